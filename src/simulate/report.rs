//! The printed result: per group and per level at receipt — arrivals, share
//! answered within 30 s, average and 95th-percentile wait, longest queue,
//! deflections, abandonment and peak recommended agents against those on
//! shift — as plain text with aligned columns; and two configurations side by
//! side with deltas.

use super::engine::Outcome;
use super::plan::Plan;
use super::stats::{Cell, Stats};
use crate::core::Level;

/// One configuration's run, with the name it is shown under.
pub struct Run<'a> {
    pub config: &'a str,
    pub outcome: &'a Outcome,
}

/// The report of one run.
pub fn table(plan: &Plan, run: &Run) -> String {
    let s = &run.outcome.stats;
    let mut out = header(plan, &[run]);
    let headers = [
        "group",
        "level",
        "arrivals",
        "<=30s",
        "avg wait",
        "p95 wait",
        "max queue",
        "deflected",
        "abandoned",
        "agents need/on",
    ];
    let mut rows = row_keys(&[s])
        .into_iter()
        .map(|key| match key {
            None => Vec::new(),
            Some((g, l)) => {
                let g = g.as_deref();
                let c = cell(s, g, l);
                let mut row = vec![group_name(g), level_name(l)];
                row.extend([
                    count(c.arrivals),
                    share(&c),
                    secs(c.avg_wait_s()),
                    secs(c.p95_wait_s()),
                    count(u64::from(c.max_queue)),
                    count(c.deflected),
                    count(c.abandoned),
                    staffing(s, &c, g, l),
                ]);
                row
            }
        })
        .collect::<Vec<_>>();
    blank_repeats(&mut rows);
    out.push_str(&render(&headers, &rows));
    out.push_str(&footer(&[run]));
    out
}

/// Two runs of the same plan side by side: A, B and B - A.
pub fn compare(plan: &Plan, a: &Run, b: &Run) -> String {
    let (sa, sb) = (&a.outcome.stats, &b.outcome.stats);
    let mut out = header(plan, &[a, b]);
    let headers: Vec<&str> = COMPARE_HEADERS.split('|').collect();
    let mut rows = row_keys(&[sa, sb])
        .into_iter()
        .map(|key| key.map_or_else(Vec::new, |(g, l)| compare_row(sa, sb, g.as_deref(), l)))
        .collect::<Vec<_>>();
    blank_repeats(&mut rows);
    out.push_str(&render(&headers, &rows));
    out.push_str(&footer(&[a, b]));
    out
}

const COMPARE_HEADERS: &str = "group|level|arrivals A|B|<=30s A|B|delta|avg wait A|B|delta|p95 A|B|delta|\
    max queue A|B|deflected A|B|abandoned A|B|need/on A|B";

fn compare_row(sa: &Stats, sb: &Stats, g: Option<&str>, l: Option<Level>) -> Vec<String> {
    let (ca, cb) = (cell(sa, g, l), cell(sb, g, l));
    let (wa, wb) = (ca.avg_wait_s(), cb.avg_wait_s());
    let (pa, pb) = (ca.p95_wait_s(), cb.p95_wait_s());
    vec![
        group_name(g),
        level_name(l),
        count(ca.arrivals),
        count(cb.arrivals),
        share(&ca),
        share(&cb),
        delta_pts(ca.within_share(), cb.within_share()),
        secs(wa),
        secs(wb),
        delta_secs(wa, wb),
        secs(pa),
        secs(pb),
        delta_secs(pa, pb),
        count(u64::from(ca.max_queue)),
        count(u64::from(cb.max_queue)),
        count(ca.deflected),
        count(cb.deflected),
        count(ca.abandoned),
        count(cb.abandoned),
        staffing(sa, &ca, g, l),
        staffing(sb, &cb, g, l),
    ]
}

fn header(plan: &Plan, runs: &[&Run]) -> String {
    let s = &runs[0].outcome.stats;
    let mut out = format!(
        "{}: {} to {} ({}), seed {}, {} agents on {} shift(s)\n",
        plan.name,
        plan.start.format(plan.start.at),
        plan.start.format(plan.end),
        duration(plan.end - plan.start.at),
        plan.seed,
        plan.agents.len(),
        distinct_shifts(plan),
    );
    // Hand-backs are arrivals in the table, but not more customers; with two
    // configurations they may differ (the same customers, deflected differently).
    let customers = s.level_total(None).arrivals.saturating_sub(s.bot_returned);
    let source = plan.recorded.as_ref().map_or(String::new(), |file| format!(" replayed from {file}"));
    let backs: Vec<String> = runs.iter().map(|r| count(r.outcome.stats.bot_returned)).collect();
    let backs = match backs.as_slice() {
        [a, b] if a != b => format!("A {a}, B {b}"),
        _ => backs[0].clone(),
    };
    let backs = if runs.iter().all(|r| r.outcome.stats.bot_returned == 0) {
        String::new()
    } else {
        format!("; the bot handed {backs} back, each an arrival again in the table")
    };
    out.push_str(&format!("{} inquiries{source}{backs}\n", count(customers)));
    for (i, run) in runs.iter().enumerate() {
        let label = if runs.len() > 1 { format!("{} = ", ["A", "B"][i]) } else { String::new() };
        let t = whole_minutes(&run.outcome.stats.router_time_ms);
        out.push_str(&format!(
            "{label}configuration {}: router time at NORMAL {}, PEAK {}, SURGE {}\n",
            run.config,
            duration(t[0]),
            duration(t[1]),
            duration(t[2])
        ));
    }
    out.push('\n');
    out
}

fn footer(runs: &[&Run]) -> String {
    let mut out = String::from(concat!(
        "\nlevel: the group's level when the inquiry arrived. wait: from receipt to an agent's accept.\n",
        "<=30s: share of queued (not deflected) inquiries accepted within 30 s. max queue of all groups: all\n",
        "queues together, at the router's level. need/on: the router's recommended agents (Erlang C +\n",
        "standby reserve) averaged over 15 minutes, the highest such average at that level, and the\n",
        "agents on shift then.\n",
    ));
    for run in runs {
        let s = &run.outcome.stats;
        for note in &run.outcome.notes {
            out.push_str(&format!("{}: note: {note}\n", run.config));
        }
        if s.unfinished > 0 {
            out.push_str(&format!(
                "{}: {} inquiries were still waiting 2 h after the window closed.\n",
                run.config,
                count(s.unfinished)
            ));
        }
        out.push_str(&format!(
            "{}: {} core commands in {:.1} s.\n",
            run.config,
            count(run.outcome.commands),
            run.outcome.elapsed.as_secs_f64()
        ));
    }
    out
}

fn distinct_shifts(plan: &Plan) -> usize {
    let mut names: Vec<&str> =
        plan.agents.iter().map(|a| a.presence.agent.rsplit_once('-').map_or("", |(n, _)| n)).collect();
    names.dedup();
    names.len()
}

/// Rows to print: `(group or None for all, level or None for all)`, with
/// `None` rows as blank separators. Levels nobody saw are left out. Groups
/// are matched by id: the first run's in its order, then those only the
/// second configuration has.
fn row_keys(stats: &[&Stats]) -> Vec<Option<(Option<String>, Option<Level>)>> {
    let mut groups: Vec<&str> = Vec::new();
    for s in stats {
        for g in &s.groups {
            if !groups.contains(&g.as_str()) {
                groups.push(g);
            }
        }
    }
    let seen = |g: Option<&str>, l: Level| {
        stats.iter().any(|s| {
            let c = cell(s, g, Some(l));
            c.arrivals > 0 || c.time_ms > 0
        })
    };
    let mut keys = Vec::new();
    for g in groups.into_iter().map(Some).chain([None]) {
        if g.is_some() && stats.iter().all(|s| cell(s, g, None).arrivals == 0) {
            continue;
        }
        for l in Level::ALL.into_iter().filter(|&l| seen(g, l)) {
            keys.push(Some((g.map(str::to_string), Some(l))));
        }
        keys.push(Some((g.map(str::to_string), None)));
        keys.push(None);
    }
    keys.pop();
    keys
}

/// A group's (by id; empty where the run has no such group) or all groups'
/// cell, at one level or all.
fn cell(s: &Stats, g: Option<&str>, l: Option<Level>) -> Cell {
    let Some(name) = g else { return s.level_total(l) };
    let Some(g) = s.groups.iter().position(|id| id.as_str() == name) else { return Cell::default() };
    match l {
        Some(l) => s.cells[g][l.index()].clone(),
        None => s.group_total(g),
    }
}

fn group_name(g: Option<&str>) -> String {
    g.unwrap_or("all groups").to_string()
}

/// Shows a group's name only on the first row of its block.
fn blank_repeats(rows: &mut [Vec<String>]) {
    let mut last = String::new();
    for row in rows.iter_mut().filter(|r| !r.is_empty()) {
        if row[0] == last {
            row[0].clear();
        } else {
            last = row[0].clone();
        }
    }
}

fn level_name(l: Option<Level>) -> String {
    l.map_or_else(|| "all".to_string(), |l| l.name().to_string())
}

fn staffing(s: &Stats, c: &Cell, g: Option<&str>, l: Option<Level>) -> String {
    let (need, have) = match (g, l) {
        (None, Some(l)) => s.router_peak[l.index()],
        (None, None) => s.router_peak.iter().copied().max_by_key(|p| p.0).unwrap_or_default(),
        _ => (c.need_peak, c.have_at_peak),
    };
    if need == 0 && have == 0 {
        return "-".into();
    }
    format!("{need}/{have}")
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn share(c: &Cell) -> String {
    c.within_share().map_or_else(|| "-".into(), |s| format!("{:.1} %", s * 100.0))
}

/// A wait: `14 s`, `3m 05s`, `1h 02m`.
fn secs(s: Option<f64>) -> String {
    let Some(s) = s else { return "-".into() };
    let whole = s.round() as u64;
    match whole {
        0..60 => format!("{whole} s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, whole % 3600 / 60),
    }
}

/// A change in percentage points; one that rounds to nothing shows as `0.0`.
fn delta_pts(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => match format!("{:+.1}", (b - a) * 100.0) {
            zero if zero == "+0.0" || zero == "-0.0" => "0.0".into(),
            delta => delta,
        },
        _ => "-".into(),
    }
}

/// A change of a wait; one under half a second shows as `0 s`.
fn delta_secs(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if (b - a).abs() < 0.5 => "0 s".into(),
        (Some(a), Some(b)) if b > a => format!("+{}", secs(Some(b - a))),
        (Some(a), Some(b)) => format!("-{}", secs(Some(a - b))),
        _ => "-".into(),
    }
}

/// Times in ms as whole minutes that add up to the whole minutes of their
/// sum: each rounded down, then the minutes left over go to the largest
/// remainders, so the three level times read as the window.
fn whole_minutes(ms: &[u64; 3]) -> [u64; 3] {
    let mut minutes = ms.map(|t| t / 60_000 * 60_000);
    let left = (ms.iter().sum::<u64>() / 60_000 * 60_000 - minutes.iter().sum::<u64>()) / 60_000;
    let mut by_remainder = [0, 1, 2];
    by_remainder.sort_by_key(|&i| std::cmp::Reverse(ms[i] % 60_000));
    for &i in by_remainder.iter().take(left as usize) {
        minutes[i] += 60_000;
    }
    minutes
}

fn duration(ms: u64) -> String {
    let minutes = ms / 60_000;
    format!("{}h {:02}m", minutes / 60, minutes % 60)
}

/// Aligned columns: the first two left-aligned, the rest right-aligned; an
/// empty row prints as a blank line.
fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if i < 2 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        if row.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
    }
    out
}

#[cfg(test)]
#[test]
fn changes_that_round_to_nothing_have_no_sign() {
    assert_eq!(delta_secs(Some(10.0), Some(9.8)), "0 s");
    assert_eq!(delta_secs(Some(10.0), Some(12.0)), "+2 s");
    assert_eq!(delta_secs(Some(75.0), Some(10.0)), "-1m 05s");
    assert_eq!(delta_pts(Some(0.9001), Some(0.9)), "0.0");
    assert_eq!(delta_pts(Some(0.9), Some(0.95)), "+5.0");
    assert_eq!(delta_pts(None, Some(0.95)), "-");
}
