//! Recorded inquiries: a JSONL file, one `Inquiry` per line in the JSON form of
//! the NATS contract (SPEC section 5), checked exactly like the service checks
//! them (`adapters::codec::inquiry_from_proto`).
//!
//! `created_at_ms` is each inquiry's arrival time, in milliseconds. A
//! recording of another date is moved by whole days, keeping the time of
//! day, so that most of its inquiries fall in the scenario's window (see
//! `day_shift`): last year's Double 11 replays against this year's roster. Bad lines
//! are reported with their number and skipped; they never stop the replay.

use super::plan::Plan;
use super::traffic::Arrival;
use super::SimError;
use crate::adapters::codec::inquiry_from_proto;
use crate::proto;
use crate::rng::Rng;
use std::collections::HashMap;
use std::path::Path;

/// A line that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    pub line: usize,
    pub reason: String,
}

/// The usable inquiries of a recording, placed in the scenario's window.
#[derive(Clone, Debug)]
pub struct Recording {
    pub arrivals: Vec<Arrival>,
    pub skipped: Vec<LineProblem>,
    /// Good inquiries that fall outside the window after the day shift.
    pub outside: usize,
    /// Whole days the recording was moved by (positive: later).
    pub shifted_days: i64,
}

impl Recording {
    /// Where the replayed inquiries came from, for the report: the file,
    /// and what was left out or moved (each line's reason goes to stderr).
    pub fn source(&self, file: &str) -> String {
        let mut notes = Vec::new();
        if !self.skipped.is_empty() {
            notes.push(format!("{} bad line(s) skipped", self.skipped.len()));
        }
        if self.outside > 0 {
            notes.push(format!("{} outside the window left out", self.outside));
        }
        if self.shifted_days != 0 {
            notes.push(format!("moved by {} day(s)", self.shifted_days));
        }
        if notes.is_empty() {
            file.to_string()
        } else {
            format!("{file} ({})", notes.join(", "))
        }
    }

    /// Skills the replayed inquiries require that no agent of the roster
    /// has, with how many inquiries need each: those can never be answered.
    pub fn skills_nobody_has(&self, plan: &Plan) -> Vec<(String, usize)> {
        let rostered: std::collections::HashSet<&str> =
            plan.agents.iter().flat_map(|a| a.presence.skills.iter().map(String::as_str)).collect();
        let mut missing: std::collections::BTreeMap<String, usize> = Default::default();
        for arrival in &self.arrivals {
            for skill in arrival.inquiry.required_skills.iter().filter(|s| !rostered.contains(s.as_str())) {
                *missing.entry(skill.to_string()).or_default() += 1;
            }
        }
        missing.into_iter().collect()
    }
}

/// Shop id for lines that carry none.
pub const DEFAULT_SHOP: &str = "recorded";

/// Reads `path` and places its inquiries in `plan`'s window. Fails only when
/// the file cannot be read or holds no usable inquiry in the window.
pub fn read(path: &Path, plan: &Plan) -> Result<Recording, SimError> {
    let bytes = std::fs::read(path)
        .map_err(|e| SimError::Recording(format!("{}: cannot read the file: {e}", path.display())))?;
    let (good, skipped) = parse_bytes(&bytes);
    if good.is_empty() {
        let hint = skipped.first().map_or(String::new(), |p| format!("; line {}: {}", p.line, p.reason));
        return Err(SimError::Recording(format!(
            "{}: no usable inquiry ({} line(s) skipped{hint})",
            path.display(),
            skipped.len()
        )));
    }
    let shifted_days = day_shift(&good, plan.start.at as i64, plan.end as i64);
    let shift = shifted_days * super::clock::DAY;
    let mut rng = Rng::new(plan.seed);
    let mut arrivals = Vec::with_capacity(good.len());
    let mut outside = 0;
    for (_, inquiry) in good {
        let at = inquiry.created_at_ms as i64 + shift;
        if at < plan.start.at as i64 || at >= plan.end as i64 {
            outside += 1;
            continue;
        }
        let handle_ms = plan.handle.sample(&mut rng, inquiry.category);
        arrivals.push(Arrival { at: at as u64, inquiry, handle_ms });
    }
    if arrivals.is_empty() {
        return Err(SimError::Recording(format!(
            "{}: none of the {outside} inquiries falls within the scenario's window ({} to {}); set `start` and `duration` in the scenario to cover the recording",
            path.display(),
            plan.start.format(plan.start.at),
            plan.start.format(plan.end)
        )));
    }
    Ok(Recording { arrivals, skipped, outside, shifted_days })
}

/// Whole days that move the most inquiries into `[start, end)`: each day the
/// recording covers is tried as the window's first day, and a day either
/// side (a first line a minute before the window's time of day must not push
/// the rest a whole day on). One stray line from another date does not move
/// the recording: of equal counts, the shift nearest the busiest day's wins.
/// `good` is in time order.
fn day_shift(good: &[(usize, crate::core::Inquiry)], start: i64, end: i64) -> i64 {
    let day = super::clock::DAY;
    let times: Vec<i64> = good.iter().map(|(_, q)| q.created_at_ms as i64).collect();
    // The shift that brings `t` into the window's first 24 hours; later
    // lines have smaller ones, so equal shifts come in runs.
    let base_of = |t: i64| (start - t + day - 1).div_euclid(day);
    let mut runs: Vec<(i64, usize)> = Vec::new();
    for base in times.iter().map(|&t| base_of(t)) {
        match runs.last_mut() {
            Some((last, n)) if *last == base => *n += 1,
            _ => runs.push((base, 1)),
        }
    }
    let busiest = runs.iter().max_by_key(|&&(base, n)| (n, std::cmp::Reverse(base))).map_or(0, |&(base, _)| base);
    let inside = |days: i64| {
        let shift = days * day;
        times.partition_point(|&t| t + shift < end) - times.partition_point(|&t| t + shift < start)
    };
    let candidates = runs.iter().flat_map(|&(base, _)| [base, base - 1, base + 1]);
    candidates.max_by_key(|&days| (inside(days), std::cmp::Reverse((days - busiest).abs()))).unwrap_or(busiest)
}

/// Every line decoded and checked: `(line, inquiry)` in arrival order (file
/// order for equal times), and the problems by line. Of several lines with
/// one id the earliest arrival counts, wherever it is in the file.
pub fn parse(text: &str) -> (Vec<(usize, crate::core::Inquiry)>, Vec<LineProblem>) {
    parse_bytes(text.as_bytes())
}

/// [`parse`] of raw bytes: a line that is not UTF-8 (an export in GBK, say)
/// is skipped with its number like any other bad line, not the whole file.
pub fn parse_bytes(bytes: &[u8]) -> (Vec<(usize, crate::core::Inquiry)>, Vec<LineProblem>) {
    let mut decoded = Vec::new();
    let mut skipped = Vec::new();
    // A byte-order mark is not part of the first line's JSON.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line,
            Err(e) => {
                let reason = format!(
                    "not UTF-8 (byte {} of the line); convert the file, e.g. `iconv -f GBK -t UTF-8`",
                    e.valid_up_to() + 1
                );
                skipped.push(LineProblem { line: i + 1, reason });
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match decode(line) {
            Ok(inquiry) => decoded.push((i + 1, inquiry)),
            Err(reason) => skipped.push(LineProblem { line: i + 1, reason }),
        }
    }
    decoded.sort_by_key(|(_, inquiry)| inquiry.created_at_ms);
    let mut good = Vec::with_capacity(decoded.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, inquiry) in decoded {
        match seen.get(&*inquiry.id) {
                // The simulated bot hands deflected inquiries back itself.
                Some(first) if inquiry.bot_attempted => skipped.push(LineProblem {
                    line: n,
                    reason: format!(
                        "the bot's hand-back of `{}` (arrived earlier, line {first}); hand-backs come from the scenario's [bot]",
                        inquiry.id
                    ),
                }),
                Some(first) => skipped.push(LineProblem {
                    line: n,
                    reason: format!("duplicate id `{}` (arrived earlier, line {first}); ids must be unique", inquiry.id),
                }),
                None => {
                    seen.insert(inquiry.id.to_string(), n);
                    good.push((n, inquiry));
                }
        }
    }
    skipped.sort_by_key(|p| p.line);
    (good, skipped)
}

fn decode(line: &str) -> Result<crate::core::Inquiry, String> {
    if line.trim_start().starts_with('[') {
        return Err(
            "a JSON array; the file needs one JSON object per line (JSONL), e.g. `jq -c '.[]' day.json > day.jsonl`"
                .into(),
        );
    }
    // The router's own JSON decoding: the same fields, nulls and limits.
    let wire: proto::Inquiry = crate::adapters::codec::decode_as(None, line.as_bytes())
        .map_err(|rejection| format!("not an Inquiry in JSON ({rejection}); see SPEC section 5"))?;
    if wire.created_at_ms <= 0 {
        return Err("`created_at_ms` is missing; a recording needs each inquiry's arrival time".into());
    }
    // Milliseconds since 1970 passed 10^11 in 1973; seconds will not until
    // the year 5138.
    if wire.created_at_ms < 100_000_000_000 {
        return Err(format!(
            "`created_at_ms` {} looks like seconds since 1970, not milliseconds; multiply by 1000",
            wire.created_at_ms
        ));
    }
    let shop = if wire.shop_id.is_empty() { DEFAULT_SHOP.to_string() } else { wire.shop_id.clone() };
    let now = wire.created_at_ms as u64;
    inquiry_from_proto(wire, &shop, now).map_err(|rejection| rejection.to_string())
}
