//! The chart of a run as a hand-written SVG: arrivals per minute with the named
//! spikes, total queue length, the router's level as a coloured band, average
//! wait against the 30 s target, and agents on shift against the router's
//! recommendation. With two runs, the second is drawn dashed in another colour.
//!
//! Pure text generation; writing the file is the caller's job.

use super::plan::Plan;
use super::stats::{Minute, Stats};
use crate::core::Level;
use std::fmt::Write;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const COLORS: [&str; 2] = ["#1f5fa8", "#e8590c"];
const LEVEL_COLORS: [&str; 3] = ["#8bc34a", "#ffb300", "#e53935"];

/// One run to draw, with its legend label.
pub struct Series<'a> {
    pub label: &'a str,
    pub stats: &'a Stats,
}

/// The SVG document for `runs` (one or two) of `plan`.
pub fn svg(plan: &Plan, runs: &[Series]) -> String {
    let minutes = ((plan.end - plan.start.at).div_ceil(60_000) as usize).max(1);
    let mut c = Canvas { out: String::new(), minutes, top: 60.0 };
    let band_h = 14.0 * runs.len() as f64 + 8.0;
    let height = 60.0 + 4.0 * 150.0 + band_h + 30.0 + 50.0;
    let _ = write!(
        c.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(c.out, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = write!(c.out, r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#, esc(&plan.name));
    legend(&mut c, runs);
    time_axis(&mut c, plan, 60.0 + 4.0 * 150.0 + band_h + 30.0);
    let data = |f: fn(&Minute) -> f64| -> Vec<Vec<f64>> {
        runs.iter().map(|r| (0..minutes).map(|i| r.stats.minutes.get(i).map_or(0.0, f)).collect()).collect()
    };
    let arrivals = data(|m| f64::from(m.arrivals));
    c.panel("arrivals per minute", &arrivals[..1], true, None);
    spikes(&mut c, plan);
    c.top += 150.0;
    c.panel("longest queue in the minute (all groups)", &data(|m| f64::from(m.max_queue)), false, None);
    c.top += 150.0;
    levels(&mut c, runs);
    c.top += band_h + 30.0;
    let wait = data(|m| if m.answered == 0 { f64::NAN } else { m.wait_sum_ms as f64 / f64::from(m.answered) / 1000.0 });
    c.panel("average wait of inquiries answered in the minute (s); dotted: 30 s target", &wait, false, Some(30.0));
    c.top += 150.0;
    let mut agents = data(|m| f64::from(m.agents_on_shift));
    agents.truncate(1);
    agents.extend(data(|m| f64::from(m.agents_needed)));
    c.panel("agents on shift (grey) and recommended by the router", &agents, false, None);
    c.out.push_str("</svg>\n");
    c.out
}

struct Canvas {
    out: String,
    minutes: usize,
    top: f64,
}

impl Canvas {
    fn x(&self, minute: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * minute / self.minutes as f64
    }

    /// A 110 px high panel: title, frame, y scale and one line per series
    /// (the first of an agents panel is the grey roster line).
    fn panel(&mut self, title: &str, series: &[Vec<f64>], fill: bool, target: Option<f64>) {
        let (top, h) = (self.top + 20.0, 110.0);
        let max =
            nice_max(series.iter().flatten().copied().filter(|v| v.is_finite()).fold(target.unwrap_or(0.0), f64::max));
        let y = |v: f64| top + h - h * v / max;
        let _ =
            write!(self.out, r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#, self.top + 12.0, esc(title));
        let _ = write!(
            self.out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{h}" fill="none" stroke="#bbbbbb"/>"##,
            WIDTH - LEFT - RIGHT
        );
        for tick in [0.0, max / 2.0, max] {
            let (ty, label, right) = (y(tick), short(tick), WIDTH - RIGHT);
            let _ = write!(
                self.out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555555">{label}</text><line x1="{LEFT}" x2="{right:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#eeeeee"/>"##,
                LEFT - 6.0,
                ty + 4.0,
            );
        }
        if let Some(t) = target {
            let _ = write!(
                self.out,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{1:.1}" y2="{1:.1}" stroke="#333333" stroke-dasharray="2,3"/>"##,
                WIDTH - RIGHT,
                y(t)
            );
        }
        let agents_panel = series.len() > 1 && title.starts_with("agents");
        for (i, values) in series.iter().enumerate() {
            let (color, dash) = match (agents_panel, i) {
                (true, 0) => ("#999999", ""),
                (true, i) => (COLORS[i - 1], if i > 1 { r#" stroke-dasharray="6,3""# } else { "" }),
                (false, i) => (COLORS[i], if i > 0 { r#" stroke-dasharray="6,3""# } else { "" }),
            };
            let d = self.path(values, &y);
            if fill && i == 0 {
                let _ = write!(
                    self.out,
                    r#"<path d="{d} L{:.1},{:.1} L{LEFT},{:.1} Z" fill="{color}" fill-opacity="0.18" stroke="none"/>"#,
                    self.x(values.len() as f64),
                    top + h,
                    top + h
                );
            }
            let _ = write!(self.out, r#"<path d="{d}" fill="none" stroke="{color}" stroke-width="1.3"{dash}/>"#);
        }
    }

    /// `M`/`L` path data; gaps (NaN) start a new segment.
    fn path(&self, values: &[f64], y: &dyn Fn(f64) -> f64) -> String {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, v) in values.iter().enumerate() {
            if !v.is_finite() {
                pen_down = false;
                continue;
            }
            let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, self.x(i as f64 + 0.5), y(*v));
            pen_down = true;
        }
        if d.is_empty() {
            d.push_str(&format!("M{LEFT},{:.1}", y(0.0)));
        }
        d.trim_end().to_string()
    }
}

fn legend(c: &mut Canvas, runs: &[Series]) {
    let mut x = LEFT;
    // Each label gets its share of the room left of the level legend; a
    // longer one (a configuration's path) keeps its end, the file name.
    let room = WIDTH - RIGHT - 280.0 - LEFT;
    let most_chars = ((room / runs.len().max(1) as f64 - 40.0) / 7.0).max(8.0) as usize;
    for (i, run) in runs.iter().enumerate() {
        let chars = run.label.chars().count();
        let label = if chars > most_chars {
            let tail: String = run.label.chars().skip(chars + 1 - most_chars).collect();
            format!("…{tail}")
        } else {
            run.label.to_string()
        };
        let run = Series { label: &label, stats: run.stats };
        let dash = if i > 0 { r#" stroke-dasharray="6,3""# } else { "" };
        let _ = write!(
            c.out,
            r#"<line x1="{x}" x2="{:.0}" y1="42" y2="42" stroke="{}" stroke-width="2"{dash}/><text x="{:.0}" y="46">{}</text>"#,
            x + 24.0,
            COLORS[i],
            x + 30.0,
            esc(run.label)
        );
        x += 40.0 + 7.0 * run.label.chars().count() as f64;
    }
    for (i, level) in Level::ALL.iter().enumerate() {
        let lx = WIDTH - RIGHT - 270.0 + 90.0 * i as f64;
        let _ = write!(
            c.out,
            r#"<rect x="{lx}" y="35" width="12" height="12" fill="{}"/><text x="{}" y="46">{}</text>"#,
            LEVEL_COLORS[i],
            lx + 16.0,
            level.name()
        );
    }
}

fn spikes(c: &mut Canvas, plan: &Plan) {
    for (name, at) in &plan.spikes {
        if *at < plan.start.at || *at >= plan.end {
            continue;
        }
        let x = c.x((at - plan.start.at) as f64 / 60_000.0);
        let _ = write!(
            c.out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#444444" stroke-dasharray="3,3"/><text x="{:.1}" y="{:.1}" fill="#444444">{}</text>"##,
            c.top + 20.0,
            c.top + 130.0,
            x + 4.0,
            c.top + 34.0,
            esc(name)
        );
    }
}

fn levels(c: &mut Canvas, runs: &[Series]) {
    let _ = write!(c.out, r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">router level</text>"#, c.top + 12.0);
    for (r, run) in runs.iter().enumerate() {
        let y = c.top + 20.0 + 14.0 * r as f64;
        let mut i = 0;
        while i < c.minutes {
            let level = run.stats.minutes.get(i).map_or(Level::Normal, |m| m.level);
            let mut j = i + 1;
            while j < c.minutes && run.stats.minutes.get(j).map_or(Level::Normal, |m| m.level) == level {
                j += 1;
            }
            let (x0, x1) = (c.x(i as f64), c.x(j as f64));
            let _ = write!(
                c.out,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="12" fill="{}"/>"#,
                x1 - x0,
                LEVEL_COLORS[level.index()]
            );
            i = j;
        }
        if runs.len() > 1 {
            let _ = write!(
                c.out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 10.0,
                ["A", "B"][r]
            );
        }
    }
}

/// Time lines behind the panels and their labels below `bottom`: whole
/// hours, or for a window of a few hours, every 5 to 30 minutes.
fn time_axis(c: &mut Canvas, plan: &Plan, bottom: f64) {
    let minutes = c.minutes as f64;
    let steps = [5u64, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440];
    let every = steps.into_iter().find(|e| minutes / *e as f64 <= 16.0).unwrap_or(1440);
    let every_ms = every as i64 * 60_000;
    // The first whole local step (offsets such as +05:30 are not whole UTC hours).
    let local = plan.start.at as i64 + plan.start.offset_ms;
    let first = (local + every_ms - 1).div_euclid(every_ms) * every_ms - plan.start.offset_ms;
    let mut at = first as u64;
    while at <= plan.end {
        let (month, day, hour, minute) = plan.start.local_parts(at);
        let x = c.x((at - plan.start.at) as f64 / 60_000.0);
        let midnight = hour == 0 && minute == 0;
        let label = if midnight { format!("{month:02}-{day:02}") } else { format!("{hour:02}:{minute:02}") };
        let weight = if midnight { r#" font-weight="bold""# } else { "" };
        let _ = write!(
            c.out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="60" y2="{bottom:.1}" stroke="#dddddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle"{weight}>{label}</text>"##,
            bottom + 16.0
        );
        at += every_ms as u64;
    }
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k) at or above `v`, at least 1.
fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 1.0 {
        return 1.0;
    }
    let base = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * base)
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
