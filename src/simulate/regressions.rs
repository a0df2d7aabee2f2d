//! Planner-facing mistakes found in use: groups compared by id, hand-backs
//! due after the window, the all-groups queue, unsorted recordings, shifts
//! outside the window, fatigue without breaks, and local chart hours.

use super::engine::{run, Outcome};
use super::plan::{compile, Plan};
use super::recorded;
use super::report::{self, Run};
use super::scenario::Scenario;
use super::stats::{GroupSample, Stats};
use super::{chart, clock};
use crate::core::settings::GroupSettings;
use crate::core::{Level, RoutingSettings};

fn scenario(minutes: u32, per_min: f64, roster: &str, extra: &str) -> String {
    format!(
        r#"
name = "t"
start = "2024-11-11T10:00:00+08:00"
duration = "{minutes}m"
{extra}
[arrivals]
curve = [{{ at = "10:00", per_min = {per_min} }}]
[handle]
mean = "1m"
{roster}
"#
    )
}

const GENERALISTS: &str = r#"
[[roster]]
name = "all"
groups = { pre_sales = 4, orders = 4, after_sales = 4, complaints = 4, fans = 4, supervisors = 4 }
count = 4
start = "09:00"
end = "12:00"
breaks = { every = "30m", length = "10m" }
"#;

fn plan(text: &str) -> Plan {
    compile(&Scenario::parse(text).expect("parses"), 5, true).expect("valid")
}

fn outcome(stats: Stats) -> Outcome {
    Outcome { stats, commands: 0, elapsed: std::time::Duration::ZERO, notes: Vec::new() }
}

/// The `arrivals A | B` cells of `group`'s all-levels row.
fn arrivals_row(text: &str, group: &str) -> (String, String) {
    let mut in_group = false;
    for line in text.lines() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.first() == Some(&group) {
            in_group = true;
        }
        let level = if cells.first() == Some(&group) { cells.get(1) } else { cells.first() };
        if in_group && level == Some(&"all") {
            let at = if cells[0] == group { 2 } else { 1 };
            return (cells[at].to_string(), cells[at + 1].to_string());
        }
    }
    panic!("no all-levels row for {group} in\n{text}");
}

#[test]
fn compare_matches_groups_by_id_whatever_their_order_or_number() {
    let p = plan(&scenario(10, 0.0, GENERALISTS, ""));
    let mut a = Stats::new(vec!["pre_sales".into(), "orders".into(), "fans".into()], p.start.at);
    let mut b = Stats::new(vec!["orders".into(), "pre_sales".into()], p.start.at);
    for _ in 0..3 {
        a.arrived(1, Level::Normal, p.start.at);
        b.arrived(0, Level::Normal, p.start.at);
    }
    a.arrived(2, Level::Normal, p.start.at);
    let (a, b) = (outcome(a), outcome(b));
    let text = report::compare(&p, &Run { config: "a.toml", outcome: &a }, &Run { config: "b.toml", outcome: &b });
    assert_eq!(arrivals_row(&text, "orders"), ("3".into(), "3".into()), "{text}");
    assert_eq!(arrivals_row(&text, "fans"), ("1".into(), "0".into()), "B has no fans group\n{text}");
    assert!(!text.lines().any(|l| l.starts_with("pre_sales")), "no arrivals in pre_sales\n{text}");
}

#[test]
fn hand_backs_due_after_the_window_still_come_back() {
    // Pinned at SURGE, every LOW pre-sales inquiry is deflected; the bot
    // resolves none, so each comes back 2 minutes later, also after the window.
    let extra = "[bot]\nresolves = 0.0\nreturns_after = \"2m\"\n\
        [[overrides]]\nlevel = \"SURGE\"\nfrom = \"09:00\"\nuntil = \"13:00\"\n\
        [customers]\nvip_share = 0.0\nfan_share = 0.0\n\
        [[mix]]\nfrom = \"00:00\"\ncategories = { PRE_SALES = 1.0 }";
    let p = plan(&scenario(10, 2.0, GENERALISTS, extra));
    let s = run(&p, RoutingSettings::default()).expect("runs").stats;
    let total = s.level_total(None);
    assert!(total.deflected > 0, "{total:?}");
    assert_eq!(s.bot_returned, total.deflected, "every deflection came back");
    assert_eq!(s.unfinished, 0);
}

#[test]
fn the_all_groups_longest_queue_is_all_queues_together() {
    let mut s = Stats::new(vec!["a".into(), "b".into()], 0);
    let sample = |queue| GroupSample { level: Level::Peak, queue, recommended: 0, on_shift: 0 };
    s.sample(0, 1_000, Level::Peak, &[sample(5), sample(7)], 0);
    s.sample(1_000, 1_000, Level::Peak, &[sample(9), sample(0)], 0);
    assert_eq!(s.group_total(0).max_queue, 9);
    assert_eq!(s.level_total(Some(Level::Peak)).max_queue, 12);
    assert_eq!(s.level_total(None).max_queue, 12);
    assert_eq!(s.level_total(Some(Level::Surge)).max_queue, 0);
}

#[test]
fn an_unsorted_recording_keeps_the_earliest_copy_of_an_id() {
    let line = |at: u64, handed_back: bool| {
        format!(r#"{{"id":"p1","category":"ORDER","created_at_ms":{at},"bot_attempted":{handed_back}}}"#)
    };
    let text = format!("\u{feff}{}\n{}", line(1_731_290_520_000, true), line(1_731_290_400_000, false));
    let (good, skipped) = recorded::parse(&text);
    assert_eq!(good.len(), 1, "{skipped:?}");
    assert_eq!((good[0].0, good[0].1.bot_attempted), (2, false), "the original, from line 2");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].line, 1);
    assert!(skipped[0].reason.contains("hand-back"), "{skipped:?}");
}

#[test]
fn a_shift_outside_the_window_is_a_problem_with_a_hint() {
    let night = GENERALISTS.replace("\"09:00\"", "\"02:00\"").replace("\"12:00\"", "\"08:00\"");
    let problems = compile(&Scenario::parse(&scenario(60, 1.0, &night, "")).unwrap(), 1, true).unwrap_err();
    let text = problems.to_string();
    assert!(text.contains("roster[0]") && text.contains("outside the window") && text.contains("+1 02:00"), "{text}");
}

#[test]
fn shifts_without_breaks_long_enough_to_reset_fatigue_are_noted() {
    let settings = RoutingSettings::default();
    // A 3-hour window from 10:00; the shift runs 09:00-12:00.
    let with_breaks = plan(&scenario(180, 1.0, GENERALISTS, ""));
    assert!(with_breaks.fatigue_notes(&settings.fatigue).is_empty());
    let none =
        plan(&scenario(180, 1.0, &GENERALISTS.replace("breaks = { every = \"30m\", length = \"10m\" }", ""), ""));
    let notes = none.fatigue_notes(&settings.fatigue);
    assert_eq!(notes.len(), 1, "one note per shift: {notes:?}");
    assert!(
        notes[0].contains("shift `all` works up to 2h ") && notes[0].contains("breaks = {"),
        "from the window's start: {notes:?}"
    );
    let short = plan(&scenario(180, 1.0, &GENERALISTS.replace("length = \"10m\"", "length = \"5m\""), ""));
    assert_eq!(short.fatigue_notes(&settings.fatigue).len(), 1, "5-minute breaks do not reset fatigue");
    let brief =
        plan(&scenario(30, 1.0, &GENERALISTS.replace("breaks = { every = \"30m\", length = \"10m\" }", ""), ""));
    assert!(brief.fatigue_notes(&settings.fatigue).is_empty(), "30 minutes of the shift are in the window");
    let mut settings = settings;
    settings.groups.push(GroupSettings { id: "extra".into(), ..GroupSettings::default() });
    let run = run(&none, settings).expect("runs");
    assert_eq!(run.notes, notes, "the run carries the notes to the report");
}

#[test]
fn chart_hours_are_local_hours_for_half_hour_offsets() {
    let hour_lines = |offset: &str| {
        let text = scenario(180, 1.0, GENERALISTS, "")
            .replace("2024-11-11T10:00:00+08:00", &format!("2024-11-11T09:50:00{offset}"));
        let p = plan(&text);
        let svg = chart::svg(&p, &[chart::Series { label: "a", stats: &Stats::new(Vec::new(), p.start.at) }]);
        let labels: Vec<String> = svg
            .split("<line x1=\"")
            .skip(1)
            .filter_map(|part| {
                let x = part.split('"').next()?;
                let label = part.split("text-anchor=\"middle\">").nth(1)?.split('<').next()?;
                Some(format!("{label}@{x}"))
            })
            .collect();
        labels
    };
    let whole = hour_lines("+08:00");
    assert!(!whole.is_empty() && whole[0].starts_with("10:00@"), "{whole:?}");
    assert_eq!(hour_lines("+05:30"), whole, "the same local layout");
}

#[test]
fn a_date_that_does_not_exist_is_refused() {
    let err = clock::parse_start("2024-02-31T10:00:00+08:00").unwrap_err();
    assert!(err.contains("2024-02-31"), "{err}");
    assert!(clock::parse_start("2024-02-29T10:00:00+08:00").is_ok(), "a leap day exists");
}

#[test]
fn more_override_windows_than_the_router_keeps_are_refused() {
    let windows: String = (0..17)
        .map(|i| format!("[[overrides]]\nlevel = \"PEAK\"\nfrom = \"10:{i:02}\"\nuntil = \"10:{:02}\"\n", i + 1))
        .collect();
    let text = scenario(30, 2.0, GENERALISTS, &windows);
    let problems = compile(&Scenario::parse(&text).expect("parses"), 5, true).expect_err("17 windows");
    assert!(problems.to_string().contains("overrides[16]: more than 16 windows"), "{problems}");
}

#[test]
fn a_recording_reads_json_as_the_router_does() {
    let text = r#"{"id":"a","category":"ORDER","created_at_ms":1731290400000,"subject":null,"channel":null}
{"id":"b","category":"ORDER","created_at_ms":1731290400000,"customer":{"vip_tier":-1}}"#;
    let (good, skipped) = recorded::parse(text);
    assert_eq!(good.len(), 1, "a null reads as the default: {skipped:?}");
    assert!(skipped[0].reason.contains("out_of_range: customer.vip_tier is -1"), "{skipped:?}");
}

#[test]
fn a_line_that_is_not_utf8_is_skipped_not_the_whole_recording() {
    let mut bytes = br#"{"id":"a","category":"ORDER","created_at_ms":1731290400000}"#.to_vec();
    bytes.extend_from_slice(b"\r\n{\"id\":\"b\",\"category\":\"ORDER\",\"subject\":\"\xc4\xe3\xba\xc3\"}\r\n");
    bytes.extend_from_slice(br#"{"id":"c","category":"ORDER","created_at_ms":1731290400001}"#);
    let (good, skipped) = recorded::parse_bytes(&bytes);
    assert_eq!(good.iter().map(|(line, _)| *line).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].line, 2);
    assert!(skipped[0].reason.contains("not UTF-8") && skipped[0].reason.contains("iconv"), "{skipped:?}");
}

#[test]
fn the_report_names_what_a_recording_left_out() {
    let problem = recorded::LineProblem { line: 3, reason: "not JSON".into() };
    let mut recording =
        recorded::Recording { arrivals: Vec::new(), skipped: vec![problem], outside: 2, shifted_days: 0 };
    assert_eq!(recording.source("day.jsonl"), "day.jsonl (1 bad line(s) skipped, 2 outside the window left out)");
    (recording.skipped, recording.outside, recording.shifted_days) = (Vec::new(), 0, 366);
    assert_eq!(recording.source("day.jsonl"), "day.jsonl (moved by 366 day(s))");
    recording.shifted_days = 0;
    assert_eq!(recording.source("day.jsonl"), "day.jsonl");
}

#[test]
fn a_rate_with_zeros_too_many_is_refused_before_anything_is_drawn() {
    let text = scenario(30 * 60, 640_000.0, GENERALISTS, "");
    let problems = compile(&Scenario::parse(&text).expect("parses"), 5, true).expect_err("too many");
    assert!(problems.to_string().contains("arrivals: the curve asks for about 1152000000 inquiries"), "{problems}");
}

#[test]
fn recorded_inquiries_needing_a_skill_are_answered_by_the_shift_that_lists_it() {
    let with_skill = GENERALISTS.replace("count = 4", "count = 4\nskills = [\"refund_approval\"]");
    let line = |i: u64| {
        format!(
            r#"{{"id":"r-{i}","category":"AFTER_SALES_REFUND","required_skills":["refund_approval"],"created_at_ms":{}}}"#,
            1_731_290_400_000 + i * 60_000
        )
    };
    let text: Vec<String> = (0..3).map(line).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    std::fs::write(&file, text.join("\n")).unwrap();
    for (roster, answered, missing) in [(GENERALISTS.to_string(), 0, 3), (with_skill, 3, 0)] {
        let mut p = compile(&Scenario::parse(&scenario(10, 0.0, &roster, "")).expect("parses"), 5, false).unwrap();
        let recording = recorded::read(&file, &p).unwrap();
        let nobody: Vec<_> = recording.skills_nobody_has(&p);
        let expected: Vec<(String, usize)> =
            if missing > 0 { vec![("refund_approval".into(), missing)] } else { Vec::new() };
        assert_eq!(nobody, expected);
        p.arrivals = recording.arrivals;
        assert_eq!(run(&p, RoutingSettings::default()).unwrap().stats.level_total(None).answered, answered);
    }
}

#[test]
fn an_inquiry_at_the_first_instant_counts_under_the_level_pinned_from_then() {
    let pin = "[[overrides]]\nlevel = \"SURGE\"\nfrom = \"10:00\"\nuntil = \"13:00\"\n";
    let line = r#"{"id":"r-0","category":"ORDER","created_at_ms":1731290400000}"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    std::fs::write(&file, line).unwrap();
    let mut p = compile(&Scenario::parse(&scenario(10, 0.0, GENERALISTS, pin)).expect("parses"), 5, false).unwrap();
    p.arrivals = recorded::read(&file, &p).unwrap().arrivals;
    assert_eq!(p.arrivals[0].at, p.start.at, "arrives at the window's first instant");
    let stats = run(&p, RoutingSettings::default()).unwrap().stats;
    assert_eq!(stats.level_total(Some(Level::Surge)).arrivals, 1);
    assert_eq!(stats.level_total(Some(Level::Normal)).arrivals, 0);
}

#[test]
fn the_header_counts_customers_once_and_each_configurations_hand_backs() {
    let mut p = plan(&scenario(10, 0.0, GENERALISTS, ""));
    p.recorded = Some("day.jsonl (2 outside the window left out)".into());
    let stats = |returned: u64| {
        let mut s = Stats::new(vec!["orders".into()], p.start.at);
        for _ in 0..10 + returned {
            s.arrived(0, Level::Normal, p.start.at);
        }
        s.bot_returned = returned;
        outcome(s)
    };
    let (a, b) = (stats(3), stats(5));
    let text = report::compare(&p, &Run { config: "a.toml", outcome: &a }, &Run { config: "b.toml", outcome: &b });
    let line = text.lines().nth(1).expect("the inquiries line");
    assert_eq!(
        line,
        "10 inquiries replayed from day.jsonl (2 outside the window left out); the bot handed A 3, B 5 back, each an arrival again in the table"
    );
}

#[test]
fn the_time_at_each_level_adds_up_to_the_window() {
    let p = plan(&scenario(10, 2.0, GENERALISTS, ""));
    let stats = run(&p, RoutingSettings::default()).unwrap().stats;
    assert_eq!(stats.router_time_ms.iter().sum::<u64>(), 10 * 60_000);
}

#[test]
fn a_chart_of_a_short_window_labels_its_minutes() {
    let text = scenario(20, 1.0, GENERALISTS, "").replace("T10:00:00", "T10:30:00");
    let p = plan(&text);
    let svg = chart::svg(&p, &[chart::Series { label: "a", stats: &Stats::new(Vec::new(), p.start.at) }]);
    let labels: Vec<&str> = svg
        .split("text-anchor=\"middle\">")
        .skip(1)
        .filter_map(|part| part.split('<').next())
        .filter(|label| label.contains(':'))
        .collect();
    assert_eq!(labels, ["10:30", "10:35", "10:40", "10:45", "10:50"]);
}

#[test]
fn long_configuration_paths_keep_their_file_names_in_the_legend() {
    let p = plan(&scenario(20, 1.0, GENERALISTS, ""));
    let stats = Stats::new(Vec::new(), p.start.at);
    let (a, b) =
        ("configs-for-planning/".repeat(4) + "baseline.toml", "configs-for-planning/".repeat(4) + "surge-15.toml");
    let svg = chart::svg(&p, &[chart::Series { label: &a, stats: &stats }, chart::Series { label: &b, stats: &stats }]);
    assert!(svg.contains("…") && svg.contains("baseline.toml<") && svg.contains("surge-15.toml<"), "{svg}");
    assert!(!svg.contains(&b), "the whole path would run into the level legend");
}

#[test]
fn the_level_times_shown_add_up_to_the_window_in_whole_minutes() {
    let mut p = plan(&scenario(10, 0.0, GENERALISTS, ""));
    p.recorded = None;
    let mut s = Stats::new(vec!["orders".into()], p.start.at);
    s.router_time_ms = [90_000, 160_000, 350_000];
    let text = report::table(&p, &Run { config: "a.toml", outcome: &outcome(s) });
    assert!(text.contains("router time at NORMAL 0h 01m, PEAK 0h 03m, SURGE 0h 06m"), "{text}");
}
