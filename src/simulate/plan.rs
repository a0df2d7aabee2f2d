//! A parsed scenario turned into what the engine replays: absolute times,
//! checked values (every problem at once, each with its key path), the drawn
//! arrivals and each simulated agent's timeline of shift, breaks and leaving.

use super::clock::{clock_time, parse_start, Start};
use super::scenario::{Breaks, Scenario, Shift};
use super::traffic::{Arrival, Curve, CustomerModel, HandleModel, Mix, SpikeShape, Traffic};
use super::SimError;
use crate::core::{AgentStatus, Category, Level, Millis, Presence};

/// What a simulated agent does at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Shift starts or a break ends.
    Available,
    /// A break starts: active chats stay, no new offers.
    Break,
    /// The shift ends: no new offers, OFFLINE once the last chat is done.
    Leave,
}

/// One simulated agent.
#[derive(Clone, Debug)]
pub struct AgentPlan {
    /// The presence it sets when available (status AVAILABLE).
    pub presence: Presence,
    /// Time-ordered steps.
    pub steps: Vec<(Millis, Step)>,
}

/// A pinned minimum level.
#[derive(Clone, Debug)]
pub struct Pin {
    pub level: Level,
    pub group: Option<String>,
    pub from: Millis,
    pub until: Millis,
}

/// Everything the engine needs besides the routing configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub start: Start,
    pub end: Millis,
    pub step_ms: u64,
    pub seed: u64,
    pub arrivals: Vec<Arrival>,
    pub agents: Vec<AgentPlan>,
    pub patience_ms: Option<u64>,
    /// Mean offer-to-accept delay.
    pub accept_delay_ms: u64,
    pub bot_resolves: f64,
    pub bot_returns_ms: u64,
    pub pins: Vec<Pin>,
    /// Named spikes, for the chart.
    pub spikes: Vec<(String, Millis)>,
    pub handle: HandleModel,
    /// The recording the arrivals were replayed from, if any.
    pub recorded: Option<String>,
}

/// Problems found in a scenario, each `key.path: message`.
pub type Problems = Vec<String>;

/// Compiles a scenario with `seed`; `draw` false skips drawing arrivals
/// (the inquiries come from a recording).
pub fn compile(s: &Scenario, seed: u64, draw: bool) -> Result<Plan, SimError> {
    let mut p = Problems::new();
    let start = parse_start(&s.start).map_err(|e| p.push(format!("start: {e}"))).ok();
    let at = |text: &str, key: String, p: &mut Problems| -> Millis {
        match (start, clock_time(text)) {
            (Some(start), Ok(t)) => start.instant(t),
            (_, Err(e)) => {
                p.push(format!("{key}: {e}"));
                0
            }
            (None, Ok(_)) => 0,
        }
    };
    let step_ms = scalars(s, &mut p);
    let curve = curve(s, draw, &mut p, &at);
    let mix = mix(s, &mut p, &at);
    let customers = customers(s, &mut p);
    let handle = handle(s, &mut p);
    let agents = roster(&s.roster, &mut p, &at);
    let pins = pins(s, &mut p, &at);
    let Some(start) = start.filter(|_| p.is_empty()) else { return Err(SimError::Invalid(p)) };
    let end = start.at + s.duration.ms();
    for (i, shift) in s.roster.iter().enumerate() {
        let (from, until) = (at(&shift.start, String::new(), &mut p), at(&shift.end, String::new(), &mut p));
        if until <= start.at || from >= end {
            p.push(format!(
                "roster[{i}]: shift `{}` ({} to {}) lies outside the window ({} to {}); a time after midnight of \
                 the start day is written e.g. \"+1 02:00\"",
                shift.name,
                start.format(from),
                start.format(until),
                start.format(start.at),
                start.format(end)
            ));
        }
    }
    if draw {
        let expected = curve.expected_between(start.at, end);
        if expected > MAX_ARRIVALS {
            p.push(format!(
                "arrivals: the curve asks for about {expected:.0} inquiries over the window, more than the {MAX_ARRIVALS:.0} \
                 one run holds; per_min and peak_per_min are inquiries per minute (double11.toml peaks at about 640 a minute)"
            ));
        }
    }
    if !p.is_empty() {
        return Err(SimError::Invalid(p));
    }
    let traffic = Traffic {
        curve: &curve,
        mix: &mix,
        customers: &customers,
        handle: &handle,
        shop: &s.shop,
        platform: &s.platform,
    };
    Ok(Plan {
        name: s.name.clone(),
        start,
        end,
        step_ms,
        seed,
        arrivals: if draw { traffic.generate(start.at, end, step_ms, seed) } else { Vec::new() },
        agents,
        patience_ms: s.patience.map(|d| d.ms()),
        accept_delay_ms: s.agents.accept_delay.ms(),
        bot_resolves: s.bot.resolves,
        bot_returns_ms: s.bot.returns_after.ms(),
        pins,
        spikes: curve.spikes.iter().map(|sp| (sp.name.clone(), sp.at)).collect(),
        handle,
        recorded: None,
    })
}

/// Checks the single values; returns the step in milliseconds.
fn scalars(s: &Scenario, p: &mut Problems) -> u64 {
    if s.duration.0.is_zero() || s.duration.0.as_secs() > 7 * 86_400 {
        p.push("duration: must be more than 0 and at most 7 days, e.g. \"30h\"".into());
    }
    let step_ms = s.step.map_or(1_000, |d| d.ms());
    if !(100..=60_000).contains(&step_ms) {
        p.push("step: must be between 100ms and 1m; the service ticks every 100ms, 1s is plenty".into());
    }
    if s.patience.is_some_and(|d| d.0.is_zero()) {
        p.push("patience: must be more than 0 (leave it out for customers who never leave)".into());
    }
    if !(0.0..=1.0).contains(&s.bot.resolves) {
        p.push("bot.resolves: a share between 0 and 1, e.g. 0.65".into());
    }
    step_ms
}

type At<'a> = dyn Fn(&str, String, &mut Problems) -> Millis + 'a;

fn curve(s: &Scenario, draw: bool, p: &mut Problems, at: &At) -> Curve {
    let Some(arrivals) = &s.arrivals else {
        if draw {
            p.push("arrivals: missing; add an [arrivals] curve, or replay a recording with --recorded".into());
        }
        return Curve::default();
    };
    if arrivals.curve.is_empty() {
        p.push("arrivals.curve: needs at least one point { at = \"HH:MM\", per_min = N }".into());
    }
    let mut points = Vec::new();
    for (i, point) in arrivals.curve.iter().enumerate() {
        let t = at(&point.at, format!("arrivals.curve[{i}].at"), p);
        if !valid_weight(point.per_min) {
            p.push(format!("arrivals.curve[{i}].per_min: must be 0 or more"));
        }
        if points.last().is_some_and(|&(last, _)| t < last) {
            p.push(format!(
                "arrivals.curve[{i}].at: `{}` is before the previous point; keep points in time order",
                point.at
            ));
        }
        points.push((t, point.per_min));
    }
    let mut spikes = Vec::new();
    for (i, spike) in arrivals.spikes.iter().enumerate() {
        let t = at(&spike.at, format!("arrivals.spikes[{i}].at"), p);
        if !valid_weight(spike.peak_per_min) {
            p.push(format!("arrivals.spikes[{i}].peak_per_min: must be 0 or more"));
        }
        if spike.decay.0.is_zero() || spike.lasts.0.is_zero() {
            p.push(format!("arrivals.spikes[{i}]: decay and lasts must be more than 0"));
        }
        spikes.push(SpikeShape {
            name: spike.name.clone(),
            at: t,
            peak_per_min: spike.peak_per_min,
            rise_ms: spike.rise.ms(),
            decay_ms: spike.decay.ms(),
            lasts_ms: spike.lasts.ms(),
        });
    }
    Curve { points, shape: arrivals.shape, spikes }
}

fn mix(s: &Scenario, p: &mut Problems, at: &At) -> Mix {
    let mut periods = Vec::new();
    for (i, period) in s.mix.iter().enumerate() {
        let from = at(&period.from, format!("mix[{i}].from"), p);
        if periods.last().is_some_and(|&(last, _)| from < last) {
            p.push(format!(
                "mix[{i}].from: `{}` is before the previous period; keep periods in time order",
                period.from
            ));
        }
        let mut weights = [0.0; 8];
        for (name, weight) in &period.categories {
            match Category::from_name(name) {
                Some(c) if valid_weight(*weight) => weights[c as usize] = *weight,
                Some(_) => p.push(format!("mix[{i}].categories.{name}: a weight must be 0 or more")),
                None => p.push(format!("mix[{i}].categories.{name}: unknown category; use {}", category_names())),
            }
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            p.push(format!("mix[{i}].categories: give at least one category a weight above 0"));
        }
        periods.push((from, weights));
    }
    if periods.is_empty() {
        periods.push((0, Mix::everyday()));
    }
    periods[0].0 = 0; // the first period also covers any time before it
    Mix(periods)
}

fn customers(s: &Scenario, p: &mut Problems) -> CustomerModel {
    let c = &s.customers;
    for (key, share) in [("vip_share", c.vip_share), ("fan_share", c.fan_share)] {
        if !(0.0..=1.0).contains(&share) {
            p.push(format!("customers.{key}: a share between 0 and 1, e.g. 0.1"));
        }
    }
    if c.vip_tiers.iter().any(|w| !valid_weight(*w)) || c.vip_tiers.iter().sum::<f64>() <= 0.0 {
        p.push("customers.vip_tiers: five weights (tiers 1-5), 0 or more, not all 0".into());
    }
    if c.languages.values().any(|w| !valid_weight(*w))
        || (!c.languages.is_empty() && c.languages.values().sum::<f64>() <= 0.0)
    {
        p.push("customers.languages: weights must be 0 or more, not all 0".into());
    }
    CustomerModel {
        vip_share: c.vip_share,
        vip_tiers: c.vip_tiers,
        fan_share: c.fan_share,
        languages: c.languages.iter().map(|(l, w)| (l.clone(), *w)).collect(),
    }
}

fn handle(s: &Scenario, p: &mut Problems) -> HandleModel {
    let h = &s.handle;
    if !(0.0..=3.0).contains(&h.spread) {
        p.push("handle.spread: between 0 and 3 (0.6 is typical for chat)".into());
    }
    if h.mean.0.is_zero() {
        p.push("handle.mean: must be more than 0, e.g. \"4m\"".into());
    }
    let mut mean_ms = [h.mean.ms(); 8];
    for (name, mean) in &h.by_category {
        match Category::from_name(name) {
            Some(_) if mean.0.is_zero() => p.push(format!("handle.by_category.{name}: must be more than 0")),
            Some(c) => mean_ms[c as usize] = mean.ms(),
            None => p.push(format!("handle.by_category.{name}: unknown category; use {}", category_names())),
        }
    }
    HandleModel { distribution: h.distribution, spread: h.spread, mean_ms }
}

fn roster(shifts: &[Shift], p: &mut Problems, at: &At) -> Vec<AgentPlan> {
    let mut agents = Vec::new();
    for (i, shift) in shifts.iter().enumerate() {
        let key = format!("roster[{i}]");
        if shift.name.is_empty() || !crate::adapters::codec::valid_id(&format!("{}-001", shift.name)) {
            p.push(format!("{key}.name: 1-100 characters of A-Z a-z 0-9 . _ : - (agent ids are <name>-001, ...)"));
        }
        if shifts[..i].iter().any(|other| other.name == shift.name) {
            p.push(format!("{key}.name: `{}` is used by an earlier shift; names make agent ids unique", shift.name));
        }
        if shift.groups.is_empty() || shift.groups.values().any(|prof| !(1..=5).contains(prof)) {
            p.push(format!("{key}.groups: at least one group, each with a proficiency 1-5, e.g. {{ pre_sales = 4 }}"));
        }
        if shift.max_concurrent.is_some_and(|m| !(1..=50).contains(&m)) {
            p.push(format!("{key}.max_concurrent: between 1 and 50"));
        }
        let (from, until) = (at(&shift.start, format!("{key}.start"), p), at(&shift.end, format!("{key}.end"), p));
        if until <= from {
            p.push(format!(
                "{key}.end: `{}` is not after start `{}`; a night shift ends e.g. \"+1 06:00\"",
                shift.end, shift.start
            ));
        }
        if let Some(b) = &shift.breaks {
            if b.length.0.is_zero() || b.every <= b.length {
                p.push(format!("{key}.breaks: `every` must be longer than `length`, both more than 0"));
            }
        }
        for n in 0..shift.count {
            agents.push(agent(shift, n, from, until));
        }
    }
    agents
}

fn agent(shift: &Shift, n: u32, from: Millis, until: Millis) -> AgentPlan {
    let presence = Presence {
        agent: format!("{}-{:03}", shift.name, n + 1).into(),
        status: AgentStatus::Available,
        groups: shift.groups.iter().map(|(g, prof)| (g.clone(), *prof)).collect(),
        max_concurrent: shift.max_concurrent,
        languages: shift.languages.clone(),
        skills: shift.skills.clone(),
    };
    let mut steps = vec![(from, Step::Available)];
    if let Some(Breaks { every, length }) = shift.breaks {
        let (every, length) = (every.ms(), length.ms());
        // Staggered: agent n of a shift first breaks (n+1)/count of `every` into it.
        let mut at = from + every * u64::from(n + 1) / u64::from(shift.count.max(1));
        // No stretch of work longer than `every`: a break due when the shift
        // ends anyway becomes leaving on break.
        while length > 0 && every > length && at < until {
            steps.push((at, Step::Break));
            if at + length >= until {
                break;
            }
            steps.push((at + length, Step::Available));
            at += length + every;
        }
    }
    steps.push((until, Step::Leave));
    AgentPlan { presence, steps }
}

fn pins(s: &Scenario, p: &mut Problems, at: &At) -> Vec<Pin> {
    let mut pins = Vec::new();
    for (i, pin) in s.overrides.iter().enumerate() {
        let (from, until) =
            (at(&pin.from, format!("overrides[{i}].from"), p), at(&pin.until, format!("overrides[{i}].until"), p));
        if until <= from {
            p.push(format!("overrides[{i}].until: must be after `from`"));
        }
        pins.push(Pin { level: pin.level, group: pin.group.clone(), from, until });
        let limit = crate::core::router::OVERRIDES_PER_SCOPE;
        if pins.iter().filter(|other| other.group == pin.group).count() == limit + 1 {
            p.push(format!(
                "overrides[{i}]: more than {limit} windows for one scope; the router keeps at most {limit}"
            ));
        }
    }
    pins
}

/// Inquiries one run may draw: each is held in memory with its outcome, so
/// a rate typed with a few zeros too many is refused rather than exhausting
/// the machine. A whole Double 11 day of a large shop is about 200,000.
const MAX_ARRIVALS: f64 = 5_000_000.0;

/// A weight or rate: finite and not negative (NaN is not).
fn valid_weight(w: f64) -> bool {
    w.is_finite() && w >= 0.0
}

fn category_names() -> String {
    Category::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}
