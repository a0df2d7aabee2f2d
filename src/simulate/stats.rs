//! What a simulation measured: per group and per level at receipt (counts,
//! waits, longest queue, staffing), and a per-minute series for the chart.
//!
//! Only arithmetic on numbers the engine hands in; no routing knowledge.

use crate::core::{Id, Level, Millis};

/// The first-response target of SPEC section 2.
pub const ANSWER_TARGET_MS: u64 = 30_000;

/// Staffing is planned per interval, as workforce planning does: the
/// router's live advice follows a one-minute window whose random ups and
/// downs would otherwise set the peak (at 10 arrivals a minute, its highest
/// minute of a day asks for nearly twice the agents its average does).
pub const STAFFING_INTERVAL_MS: u64 = 15 * 60_000;

/// Sums of the samples of one interval: recommended agents and agents on
/// shift, and how many samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sums {
    need: u64,
    have: u64,
    samples: u32,
}

impl Sums {
    fn add(&mut self, need: u32, have: u32) {
        self.need += u64::from(need);
        self.have += u64::from(have);
        self.samples += 1;
    }

    /// The interval's average need (rounded up) and agents on shift.
    fn average(&self) -> Option<(u32, u32)> {
        let n = f64::from(self.samples);
        let up = |sum: u64| (sum as f64 / n - 1e-9).ceil() as u32;
        (self.samples > 0).then(|| (up(self.need), (self.have as f64 / n).round() as u32))
    }
}

/// Measurements of one group at one level (or a sum of several).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cell {
    pub arrivals: u64,
    pub deflected: u64,
    pub abandoned: u64,
    pub answered: u64,
    pub within_target: u64,
    pub wait_sum_ms: u64,
    /// Every answered inquiry's wait, for percentiles.
    pub waits_ms: Vec<u32>,
    pub max_queue: u32,
    /// Highest recommended agents while at this level, averaged over a
    /// staffing interval (`STAFFING_INTERVAL_MS`), and agents on shift then.
    pub need_peak: u32,
    pub have_at_peak: u32,
    /// Time the group spent at this level.
    pub time_ms: u64,
}

impl Cell {
    /// Adds `other` in (maxima stay maxima; staffing keeps the larger need).
    pub fn absorb(&mut self, other: &Cell) {
        self.arrivals += other.arrivals;
        self.deflected += other.deflected;
        self.abandoned += other.abandoned;
        self.answered += other.answered;
        self.within_target += other.within_target;
        self.wait_sum_ms += other.wait_sum_ms;
        self.waits_ms.extend_from_slice(&other.waits_ms);
        self.max_queue = self.max_queue.max(other.max_queue);
        if other.need_peak > self.need_peak {
            (self.need_peak, self.have_at_peak) = (other.need_peak, other.have_at_peak);
        }
        self.time_ms += other.time_ms;
    }

    /// Inquiries that reached an agent's queue (not deflected to the bot).
    pub fn queued(&self) -> u64 {
        self.arrivals - self.deflected
    }

    /// Share of queued inquiries answered within 30 s; `None` when none queued.
    pub fn within_share(&self) -> Option<f64> {
        (self.queued() > 0).then(|| self.within_target as f64 / self.queued() as f64)
    }

    /// Average wait of answered inquiries, in seconds.
    pub fn avg_wait_s(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.wait_sum_ms as f64 / self.answered as f64 / 1000.0)
    }

    /// 95th-percentile wait (nearest rank) of answered inquiries, in seconds.
    pub fn p95_wait_s(&self) -> Option<f64> {
        if self.waits_ms.is_empty() {
            return None;
        }
        let mut waits = self.waits_ms.clone();
        let rank = ((waits.len() as f64 * 0.95).ceil() as usize).clamp(1, waits.len()) - 1;
        let (_, p95, _) = waits.select_nth_unstable(rank);
        Some(f64::from(*p95) / 1000.0)
    }
}

/// One minute of the whole router, for the chart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Minute {
    pub arrivals: u32,
    pub deflected: u32,
    pub abandoned: u32,
    pub answered: u32,
    pub wait_sum_ms: u64,
    /// Largest total queue (all groups) seen in the minute.
    pub max_queue: u32,
    /// Highest router level in the minute.
    pub level: Level,
    pub agents_on_shift: u32,
    /// Sum over groups of the recommended agents, averaged over the staffing
    /// interval the minute is in.
    pub agents_needed: u32,
}

/// One group's state at a sampling tick.
#[derive(Clone, Copy, Debug)]
pub struct GroupSample {
    pub level: Level,
    pub queue: u32,
    pub recommended: u32,
    pub on_shift: u32,
}

/// Everything measured in one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub groups: Vec<Id>,
    /// `cells[group][level]`, level at receipt.
    pub cells: Vec<[Cell; 3]>,
    pub minutes: Vec<Minute>,
    pub start: Millis,
    /// Router-wide time per level.
    pub router_time_ms: [u64; 3],
    /// Deflected inquiries the bot handed back (counted again as arrivals).
    pub bot_returned: u64,
    /// Inquiries still waiting when the run stopped.
    pub unfinished: u64,
    /// Per router level: the highest total recommended agents (averaged over a
    /// staffing interval), and agents on shift then.
    pub router_peak: [(u32, u32); 3],
    /// Per router level: the longest queue of all groups together.
    pub router_max_queue: [u32; 3],
    /// The staffing interval being summed, and its sums: per group and level,
    /// per router level, and the router whatever its level.
    interval: u64,
    group_sums: Vec<[Sums; 3]>,
    router_sums: [Sums; 3],
    interval_sums: Sums,
}

impl Stats {
    /// Empty statistics for `groups`, minutes counted from `start`.
    pub fn new(groups: Vec<Id>, start: Millis) -> Stats {
        let cells = vec![Default::default(); groups.len()];
        let cells_len = groups.len();
        Stats {
            groups,
            cells,
            minutes: Vec::new(),
            start,
            router_time_ms: [0; 3],
            bot_returned: 0,
            unfinished: 0,
            router_peak: [(0, 0); 3],
            router_max_queue: [0; 3],
            interval: 0,
            group_sums: vec![Default::default(); cells_len],
            router_sums: Default::default(),
            interval_sums: Sums::default(),
        }
    }

    fn minute(&mut self, at: Millis) -> &mut Minute {
        let i = (at.saturating_sub(self.start) / 60_000) as usize;
        if self.minutes.len() <= i {
            self.minutes.resize(i + 1, Minute::default());
        }
        &mut self.minutes[i]
    }

    /// An inquiry was received by `group` at `level`.
    pub fn arrived(&mut self, group: usize, level: Level, at: Millis) {
        self.cells[group][level.index()].arrivals += 1;
        self.minute(at).arrivals += 1;
    }

    /// An inquiry was handed to the bot.
    pub fn deflected(&mut self, group: usize, level: Level, at: Millis) {
        self.cells[group][level.index()].deflected += 1;
        self.minute(at).deflected += 1;
    }

    /// A customer left before being answered.
    pub fn abandoned(&mut self, group: usize, level: Level, at: Millis) {
        self.cells[group][level.index()].abandoned += 1;
        self.minute(at).abandoned += 1;
    }

    /// An agent accepted an inquiry after `wait_ms`.
    pub fn answered(&mut self, group: usize, level: Level, at: Millis, wait_ms: u64) {
        let cell = &mut self.cells[group][level.index()];
        cell.answered += 1;
        cell.within_target += u64::from(wait_ms <= ANSWER_TARGET_MS);
        cell.wait_sum_ms += wait_ms;
        cell.waits_ms.push(wait_ms.min(u64::from(u32::MAX)) as u32);
        let minute = self.minute(at);
        minute.answered += 1;
        minute.wait_sum_ms += wait_ms;
    }

    /// The state of every group after a tick covering `step_ms`, with the
    /// number of agents on shift.
    pub fn sample(&mut self, at: Millis, step_ms: u64, router_level: Level, groups: &[GroupSample], on_shift: u32) {
        self.router_time_ms[router_level.index()] += step_ms;
        let interval = at.saturating_sub(self.start) / STAFFING_INTERVAL_MS;
        if interval != self.interval {
            self.close_interval();
            self.interval = interval;
        }
        for (g, s) in groups.iter().enumerate() {
            let cell = &mut self.cells[g][s.level.index()];
            cell.time_ms += step_ms;
            cell.max_queue = cell.max_queue.max(s.queue);
            self.group_sums[g][s.level.index()].add(s.recommended, s.on_shift);
        }
        let queue = groups.iter().map(|s| s.queue).sum();
        let needed = groups.iter().map(|s| s.recommended).sum();
        let longest = &mut self.router_max_queue[router_level.index()];
        *longest = (*longest).max(queue);
        self.router_sums[router_level.index()].add(needed, on_shift);
        self.interval_sums.add(needed, on_shift);
        let minute = self.minute(at);
        minute.max_queue = minute.max_queue.max(queue);
        minute.level = minute.level.max(router_level);
        minute.agents_on_shift = minute.agents_on_shift.max(on_shift);
    }

    /// Ends the staffing interval being summed: its averages raise the peaks
    /// and become the need the chart shows for its minutes.
    fn close_interval(&mut self) {
        for (g, sums) in self.group_sums.iter_mut().enumerate() {
            for (level, sum) in sums.iter_mut().enumerate() {
                let cell = &mut self.cells[g][level];
                if let Some((need, have)) = sum.average().filter(|&(need, _)| need > cell.need_peak) {
                    (cell.need_peak, cell.have_at_peak) = (need, have);
                }
                *sum = Sums::default();
            }
        }
        for (level, sum) in self.router_sums.iter_mut().enumerate() {
            if let Some(average) = sum.average().filter(|&(need, _)| need > self.router_peak[level].0) {
                self.router_peak[level] = average;
            }
            *sum = Sums::default();
        }
        if let Some((need, _)) = std::mem::take(&mut self.interval_sums).average() {
            let per = (STAFFING_INTERVAL_MS / 60_000) as usize;
            let first = self.interval as usize * per;
            for minute in self.minutes.iter_mut().skip(first).take(per) {
                minute.agents_needed = need;
            }
        }
    }

    /// Closes the last staffing interval; call once the run is over.
    pub fn finish(&mut self) {
        self.close_interval();
    }

    /// All levels of one group summed.
    pub fn group_total(&self, group: usize) -> Cell {
        let mut total = Cell::default();
        for cell in &self.cells[group] {
            total.absorb(cell);
        }
        total
    }

    /// All groups at one level summed (`None`: every level). Its longest
    /// queue is that of all groups together while the router was at `level`
    /// (the longest single group's would understate it).
    pub fn level_total(&self, level: Option<Level>) -> Cell {
        let mut total = Cell::default();
        let levels = || Level::ALL.into_iter().filter(|l| level.is_none_or(|x| x == *l));
        for group in &self.cells {
            for l in levels() {
                total.absorb(&group[l.index()]);
            }
        }
        total.max_queue = levels().map(|l| self.router_max_queue[l.index()]).max().unwrap_or(0);
        total
    }
}
