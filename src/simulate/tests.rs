//! Simulations of short scenarios: determinism, service levels with ample and
//! with too few agents, abandonment, recordings with bad lines, and the
//! scenario file's error messages.

use super::engine::{run, Outcome};
use super::plan::{compile, Plan};
use super::recorded;
use super::report::{self, Run};
use super::scenario::Scenario;
use super::{chart, stats::Stats};
use crate::core::{Level, RoutingSettings};

/// A scenario of `minutes` at `per_min` arrivals with `agents` generalists.
fn scenario(per_min: f64, agents: u32, minutes: u32, extra: &str) -> String {
    format!(
        r#"
name = "test"
start = "2024-11-11T10:00:00+08:00"
duration = "{minutes}m"
{extra}
[arrivals]
curve = [{{ at = "10:00", per_min = {per_min} }}]

[handle]
mean = "3m"

[[roster]]
name = "all"
groups = {{ pre_sales = 4, orders = 4, after_sales = 4, complaints = 4, fans = 4, supervisors = 4 }}
count = {agents}
start = "09:00"
end = "12:00"
"#
    )
}

fn plan(text: &str, seed: u64) -> Plan {
    let scenario = Scenario::parse(text).expect("scenario parses");
    compile(&scenario, seed, true).expect("scenario is valid")
}

fn simulate(text: &str) -> Outcome {
    run(&plan(text, 7), RoutingSettings::default()).expect("runs")
}

fn all(stats: &Stats) -> super::stats::Cell {
    stats.level_total(None)
}

#[test]
fn the_same_seed_gives_the_same_result_and_another_seed_does_not() {
    let text = scenario(20.0, 10, 20, "");
    let (a, b) = (simulate(&text), simulate(&text));
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.commands, b.commands);
    let other = run(&plan(&text, 8), RoutingSettings::default()).unwrap();
    assert_ne!(a.stats, other.stats);
    let p = plan(&text, 7);
    let strip = |s: String| s.lines().filter(|l| !l.contains("core commands")).collect::<Vec<_>>().join("\n");
    let table = |o: &Outcome| strip(report::table(&p, &Run { config: "defaults", outcome: o }));
    assert_eq!(table(&a), table(&b));
}

#[test]
fn ample_agents_answer_nearly_everyone_within_30_seconds() {
    let outcome = simulate(&scenario(10.0, 20, 30, ""));
    let total = all(&outcome.stats);
    assert!(total.arrivals > 200, "{total:?}");
    assert_eq!(total.answered, total.arrivals);
    assert!(total.within_share().unwrap() >= 0.99, "{:?}", total.within_share());
    assert!(total.avg_wait_s().unwrap() < 8.0);
    assert_eq!(total.deflected, 0);
    assert_eq!(outcome.stats.router_time_ms[Level::Surge.index()], 0);
}

#[test]
fn too_few_agents_bring_surge_deflections_and_long_waits() {
    let outcome = simulate(&scenario(120.0, 3, 20, ""));
    let s = &outcome.stats;
    let total = all(s);
    assert!(s.router_time_ms[Level::Surge.index()] > 0, "{:?}", s.router_time_ms);
    assert!(total.deflected > 0, "{total:?}");
    assert!(s.bot_returned > 0);
    assert!(total.within_share().unwrap() < 0.5, "{:?}", total.within_share());
    let surge = s.level_total(Some(Level::Surge));
    assert!(surge.arrivals > 0 && surge.max_queue > 20, "{surge:?}");
    let (need, have) = s.router_peak[Level::Surge.index()];
    assert!(need > have, "need {need}, have {have}");
}

#[test]
fn patience_makes_waiting_customers_leave() {
    let impatient = simulate(&scenario(60.0, 3, 20, r#"patience = "45s""#));
    let patient = simulate(&scenario(60.0, 3, 20, ""));
    assert!(all(&impatient.stats).abandoned > 0);
    assert_eq!(all(&patient.stats).abandoned, 0);
}

#[test]
fn agents_breaks_and_shift_ends_are_followed() {
    let text = scenario(10.0, 4, 60, "")
        .replace("end = \"12:00\"", "end = \"10:30\"\nbreaks = { every = \"20m\", length = \"5m\" }");
    let outcome = simulate(&text);
    let minutes = &outcome.stats.minutes;
    assert_eq!(minutes[0].agents_on_shift, 4);
    assert_eq!(minutes[45].agents_on_shift, 0, "the shift ended at 10:30");
    assert!(all(&outcome.stats).answered > 0);
}

#[test]
fn a_recording_replays_its_good_lines_and_reports_the_bad_ones() {
    // 2023-11-11T10:00:00+08:00: last year's recording, 366 days before the scenario.
    let at = 1_731_290_400_000u64 - 366 * 86_400_000;
    let line = |id: &str, category: &str, offset: u64| {
        format!(
            r#"{{"id":"{id}","shop_id":"shop-9","category":"{category}","customer":{{"id":"c-{id}","vip_tier":1}},"created_at_ms":{}}}"#,
            at + offset
        )
    };
    let text = [
        line("r-1", "ORDER", 1_000),
        "{not json".to_string(),
        line("r-2", "PRE_SALES", 5_000),
        line("r-3", "NO_SUCH_CATEGORY", 6_000),
        String::new(),
        line("r-1", "ORDER", 7_000),
        line("r-4", "COMPLAINT", 9_000).replace(r#""created_at_ms":"#, r#""x":"#),
        line("r-5", "AFTER_SALES_REFUND", 3 * 3_600_000),
    ]
    .join("\n");
    let (good, skipped) = recorded::parse(&text);
    assert_eq!(good.len(), 3);
    let lines: Vec<usize> = skipped.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4, 6, 7]);
    assert!(skipped[2].reason.contains("duplicate id `r-1` (arrived earlier, line 1)"), "{skipped:?}");
    assert!(skipped[3].reason.contains("created_at_ms"), "{skipped:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    std::fs::write(&file, &text).unwrap();
    let scenario = Scenario::parse(&scenario(0.0, 2, 10, "")).unwrap();
    let mut p = compile(&scenario, 1, false).unwrap();
    let recording = recorded::read(&file, &p).unwrap();
    assert_eq!((recording.arrivals.len(), recording.skipped.len(), recording.outside), (2, 4, 1));
    assert_eq!(recording.shifted_days, 366, "moved onto the scenario's date");
    assert_eq!(&*recording.arrivals[0].inquiry.shop_id, "shop-9");
    p.arrivals = recording.arrivals;
    let outcome = run(&p, RoutingSettings::default()).unwrap();
    assert_eq!(all(&outcome.stats).answered, 2);
}

#[test]
fn a_recording_starting_just_before_the_windows_time_of_day_is_not_pushed_a_day_on() {
    // The window opens 2024-11-11 10:00 for 10 minutes; last year's first line is at 09:59.
    let window = 1_731_290_400_000u64;
    let first = window - 366 * 86_400_000 - 60_000;
    let text: Vec<String> = (0..6u64)
        .map(|i| format!(r#"{{"id":"r-{i}","category":"ORDER","created_at_ms":{}}}"#, first + i * 60_000))
        .collect();
    let recording = replayed(&text);
    assert_eq!(recording.shifted_days, 366);
    assert_eq!((recording.arrivals.len(), recording.outside), (5, 1), "only the 09:59 line is outside");
}

#[test]
fn one_stray_line_from_another_date_does_not_move_the_recording_out_of_the_window() {
    // Last year's 10:00-10:05 of the window's date, and one line three days earlier.
    let window = 1_731_290_400_000u64;
    let first = window - 366 * 86_400_000;
    let mut text: Vec<String> = (0..6u64)
        .map(|i| format!(r#"{{"id":"r-{i}","category":"ORDER","created_at_ms":{}}}"#, first + i * 60_000))
        .collect();
    text.push(format!(r#"{{"id":"stray","category":"ORDER","created_at_ms":{}}}"#, first - 3 * 86_400_000));
    let recording = replayed(&text);
    assert_eq!(recording.shifted_days, 366);
    assert_eq!((recording.arrivals.len(), recording.outside), (6, 1), "only the stray line is outside");
}

/// `lines` as a recording placed in a 10-minute window from 2024-11-11 10:00.
fn replayed(lines: &[String]) -> recorded::Recording {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let p = compile(&Scenario::parse(&scenario(0.0, 2, 10, "")).unwrap(), 1, false).unwrap();
    recorded::read(&file, &p).unwrap()
}

#[test]
fn a_json_array_is_told_to_be_one_object_per_line() {
    let (good, skipped) = recorded::parse(r#"[{"id":"a","category":"ORDER","created_at_ms":1731290400000}]"#);
    assert!(good.is_empty());
    assert!(
        skipped[0].reason.contains("one JSON object per line") && skipped[0].reason.contains("jq -c"),
        "{skipped:?}"
    );
}

#[test]
fn a_recording_in_seconds_is_refused_line_by_line_with_the_fix() {
    let text = r#"{"id":"a","category":"ORDER","created_at_ms":1731290400}"#;
    let (good, skipped) = recorded::parse(text);
    assert!(good.is_empty());
    assert!(skipped[0].reason.contains("looks like seconds") && skipped[0].reason.contains("1000"), "{skipped:?}");
}

#[test]
fn scenario_problems_are_reported_together_with_their_keys() {
    let unknown = Scenario::parse(&scenario(5.0, 1, 10, "colour = \"blue\"")).unwrap_err().to_string();
    assert!(unknown.contains("colour") && unknown.contains("line 5"), "{unknown}");
    // Every bad key at once, and a required one with a bad value is not also "missing".
    let extra = "colour = \"blue\"\nsize = 3";
    let text = scenario(5.0, 1, 10, extra).replacen("duration = ", "duration = \"30x\"\n#", 1);
    let all = Scenario::parse(&text).unwrap_err().to_string();
    assert!(all.starts_with("3 problems:"), "{all}");
    for expected in ["colour: unknown field", "size: unknown field", "duration: `30x` is not a duration"] {
        assert!(all.contains(expected), "{expected} in {all}");
    }
    assert!(!all.contains("missing"), "{all}");
    // A bad required value in a nested table does not hide what comes after it.
    let spike = "spikes = [{ name = \"s\", at = \"10:05\", peak_per_min = 9.0, rise = \"30x\", decay = \"5m\", lasts = \"20m\" }]";
    let nested = scenario(5.0, 1, 10, "zzz = 1").replace("curve = [", &format!("{spike}\ncurve = ["));
    let both = Scenario::parse(&nested).unwrap_err().to_string();
    assert!(both.contains("arrivals.spikes[0].rise") && both.contains("zzz: unknown field"), "{both}");
    let text = scenario(5.0, 1, 10, "")
        .replace("at = \"10:00\"", "at = \"10am\"")
        .replace("start = \"09:00\"", "start = \"13:00\"")
        .replace("mean = \"3m\"", "mean = \"3m\"\nby_category = { REFUNDS = \"5m\" }");
    let problems = compile(&Scenario::parse(&text).unwrap(), 1, true).unwrap_err();
    assert!(matches!(&problems, super::SimError::Invalid(p) if p.len() == 3), "{problems:?}");
    let joined = problems.to_string();
    for expected in ["arrivals.curve[0].at", "roster[0].end", "handle.by_category.REFUNDS"] {
        assert!(joined.contains(expected), "missing {expected} in\n{joined}");
    }
    let roster = scenario(5.0, 1, 10, "").replace("fans = 4", "vips = 4");
    let p = plan(&roster, 1);
    let problems = run(&p, RoutingSettings::default()).unwrap_err().to_string();
    assert!(problems.contains("group `vips` is not in the configuration"), "{problems}");
}

#[test]
fn compare_and_chart_show_both_runs() {
    let text = scenario(40.0, 4, 20, "");
    let p = plan(&text, 3);
    let a = run(&p, RoutingSettings::default()).unwrap();
    let mut calmer = RoutingSettings::default();
    calmer.levels.surge_playbook.deflect_low_pre_sales = false;
    let b = run(&p, calmer).unwrap();
    let text = report::compare(&p, &Run { config: "a.toml", outcome: &a }, &Run { config: "b.toml", outcome: &b });
    assert!(text.contains("A = configuration a.toml") && text.contains("B = configuration b.toml"), "{text}");
    assert!(text.contains("delta") && text.contains("pre_sales") && text.contains("all groups"), "{text}");
    let svg =
        chart::svg(&p, &[chart::Series { label: "a", stats: &a.stats }, chart::Series { label: "b", stats: &b.stats }]);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.matches("<path").count() >= 8);
}

#[test]
fn agents_needed_follows_the_traffic_not_its_busiest_minute() {
    // 10 orders a minute, 3 minutes each, one chat per agent: 30 Erlangs,
    // and Erlang C asks for 34 agents to answer 80 % within 30 s. The live
    // advice over one minute of Poisson arrivals swings from about 20 to 60
    // in two hours; its highest minute used to be the figure (62).
    let text = r#"
name = "steady"
start = "2024-11-10T10:00:00+08:00"
duration = "2h"
[arrivals]
curve = [{ at = "10:00", per_min = 10 }]
[[mix]]
from = "10:00"
categories = { ORDER = 1 }
[customers]
vip_share = 0.0
fan_share = 0.0
[handle]
distribution = "fixed"
mean = "3m"
[agents]
accept_delay = "1s"
[[roster]]
name = "o"
groups = { orders = 4 }
count = 40
max_concurrent = 1
start = "10:00"
end = "13:00"
breaks = { every = "45m", length = "10m" }
"#;
    let config = r#"
grpc.auth.mode = "none"
[[groups]]
id = "orders"
categories = ["ORDER", "LOGISTICS", "PRE_SALES", "OTHER", "AFTER_SALES_REFUND", "AFTER_SALES_EXCHANGE", "AFTER_SALES_REPAIR", "COMPLAINT"]
baseline_per_min = 10.0
handle_time = "3m"
[[groups]]
id = "supervisors"
categories = []
[dedicated]
group = ""
"#;
    let no_env = std::collections::BTreeMap::<String, String>::new();
    let settings = crate::config::Config::from_toml(config, &no_env).expect("config parses").routing();
    let outcome = run(&plan(text, 5), settings).expect("runs");
    let s = &outcome.stats;
    // (Everyone breaks at 10:45, so the router spends a while at PEAK, whose
    // advice adds the standby reserve: NORMAL's is the one to check.)
    let (need, have) = s.router_peak[Level::Normal.index()];
    assert!((33..=40).contains(&need), "need {need}");
    assert_eq!(have, 40);
    let orders = s.groups.iter().position(|g| g.as_str() == "orders").unwrap();
    assert_eq!(s.cells[orders][Level::Normal.index()].need_peak, need);
    let charted: Vec<u32> = s.minutes.iter().map(|m| m.agents_needed).collect();
    assert!(charted.windows(15).next().is_some_and(|w| w[0] > 0 && w.iter().all(|&n| n == w[0])), "{charted:?}");
}

#[test]
fn accepting_slower_than_the_accept_timeout_is_pointed_out() {
    let slow = simulate(&scenario(5.0, 5, 10, "[agents]\naccept_delay = \"25s\""));
    let note = slow.notes.iter().find(|n| n.contains("accept timeout")).expect("a note");
    assert!(note.contains("37.5 s") && note.contains("orders (30 s)"), "{note}");
    let quick = simulate(&scenario(5.0, 5, 10, ""));
    assert!(quick.notes.iter().all(|n| !n.contains("accept timeout")), "{:?}", quick.notes);
    // Groups nobody on the roster works in make no offers: not named.
    let all_groups = "pre_sales = 4, orders = 4, after_sales = 4, complaints = 4, fans = 4, supervisors = 4";
    let orders_only = scenario(5.0, 5, 10, "[agents]\naccept_delay = \"25s\"").replace(all_groups, "orders = 4");
    let slow = simulate(&orders_only);
    let note = slow.notes.iter().find(|n| n.contains("accept timeout")).expect("a note");
    assert!(note.contains("orders (30 s)") && !note.contains("pre_sales"), "{note}");
}
