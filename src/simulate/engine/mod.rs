//! The discrete-event loop: replays a [`Plan`] through the routing core exactly
//! as the service drives it — `Arrive`, `Accept`, `Complete`, `Cancel`,
//! `SetPresence`, `SetLevelOverride` and a `Tick` every step — with simulated
//! agents and customers instead of NATS and desktops.
//!
//! It owns the simulated world (who accepts when, when a chat ends, who leaves
//! or takes a break) and nothing of the routing: every decision is the core's.

mod react;

use super::plan::{Plan, Step};
use super::stats::Stats;
use super::SimError;
use crate::core::{Actor, Command, Effect, Id, Inquiry, Level, Millis, Role, Router, RoutingSettings};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// After the window ends, waiting inquiries get at most this long to be answered.
const DRAIN_MS: u64 = 2 * 3600 * 1000;
/// An agent the router set AWAY (offer timeouts) comes back after this.
const COMEBACK_MS: u64 = 60_000;

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stats: Stats,
    /// Commands applied to the core.
    pub commands: u64,
    /// Wall-clock time the run took.
    pub elapsed: Duration,
    /// What the planner should know about the plan under these settings.
    pub notes: Vec<String>,
}

/// Whether `plan` can run under `settings`: the groups it names exist
/// there, and they make a router.
pub fn check(plan: &Plan, settings: &RoutingSettings) -> Result<(), SimError> {
    let problems = plan.check_against(settings);
    if !problems.is_empty() {
        return Err(SimError::Configuration(problems));
    }
    Router::new(settings.clone()).map(drop).map_err(|e| SimError::Configuration(vec![e.to_string()]))
}

/// Runs `plan` through a router with `settings`.
pub fn run(plan: &Plan, settings: RoutingSettings) -> Result<Outcome, SimError> {
    check(plan, &settings)?;
    let mut notes = plan.fatigue_notes(&settings.fatigue);
    notes.extend(slow_accept_note(plan, &settings));
    let started = Instant::now();
    let router = Router::new(settings).map_err(|e| SimError::Configuration(vec![e.to_string()]))?;
    let mut sim = Sim::new(plan, router);
    sim.run();
    Ok(Outcome { stats: sim.stats, commands: sim.commands, elapsed: started.elapsed(), notes })
}

/// Agents accept after 0.5-1.5x `accept_delay`: past a group's accept
/// timeout some offers time out, go back to the queue, and two in a row set
/// the agent AWAY, which the report's waits show without saying why.
fn slow_accept_note(plan: &Plan, settings: &RoutingSettings) -> Option<String> {
    let slowest = plan.accept_delay_ms * 3 / 2;
    // Offers come only from groups some rostered agent works in.
    let staffed = |id: &str| plan.agents.iter().any(|a| a.presence.groups.iter().any(|(g, _)| g == id));
    let too_short: Vec<String> = settings
        .groups
        .iter()
        .filter(|g| (g.accept_timeout.as_millis() as u64) < slowest && staffed(&g.id))
        .map(|g| format!("{} ({} s)", g.id, g.accept_timeout.as_secs_f64()))
        .collect();
    (!too_short.is_empty()).then(|| {
        format!(
            "agents accept after up to {:.1} s (1.5x [agents] accept_delay), longer than the accept timeout of {}: \
             such offers time out and go back to the queue, and two in a row set the agent AWAY",
            slowest as f64 / 1000.0,
            too_short.join(", ")
        )
    })
}

/// Where a simulated inquiry is, from the customer's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Open,
    Answered,
    Gone,
}

#[derive(Clone, Debug)]
struct Track {
    id: Id,
    /// Index in the plan's arrivals, or `None` for one the bot handed back.
    planned: Option<u32>,
    /// Seeds this customer's random draws (accept delays, the bot's verdict):
    /// from the plan, never from the order of events, so that `--compare`
    /// gives the same customer the same draws under both configurations.
    draw_key: u64,
    group: usize,
    level: Level,
    arrived: Millis,
    handle_ms: u64,
    fate: Fate,
    /// The offer the simulated agent is about to accept: `(agent, token)`.
    offer: Option<(u32, u64)>,
    attempts: u64,
}

#[derive(Clone, Debug)]
struct SimAgent {
    id: Id,
    groups: Vec<usize>,
    on_shift: bool,
    on_break: bool,
    leaving: bool,
    active: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Accept { ix: u32, agent: u32, token: u64 },
    Complete { ix: u32, agent: u32 },
    Abandon(u32),
    Agent(u32, Step),
    Comeback(u32),
    BotReturn(u32),
}

struct Sim<'p> {
    plan: &'p Plan,
    router: Router,
    fx: Vec<Effect>,
    now: Millis,
    queue: BinaryHeap<Reverse<(Millis, u64)>>,
    pending: FxHashMap<u64, Ev>,
    seq: u64,
    next_arrival: usize,
    tracks: Vec<Track>,
    by_id: FxHashMap<Id, u32>,
    agents: Vec<SimAgent>,
    agent_ix: FxHashMap<Id, u32>,
    group_ix: FxHashMap<Id, usize>,
    levels: Vec<Level>,
    on_shift: Vec<u32>,
    open: u64,
    /// Deflected inquiries the bot will hand back: the run waits for them.
    bot_pending: u64,
    stats: Stats,
    commands: u64,
}

impl<'p> Sim<'p> {
    fn new(plan: &'p Plan, router: Router) -> Sim<'p> {
        let groups: Vec<Id> = router.settings().groups.iter().map(|g| Id::from(g.id.as_str())).collect();
        let group_ix: FxHashMap<Id, usize> = groups.iter().cloned().enumerate().map(|(i, g)| (g, i)).collect();
        let agents = plan
            .agents
            .iter()
            .map(|a| SimAgent {
                id: a.presence.agent.clone(),
                groups: a.presence.groups.iter().map(|(g, _)| group_ix[g.as_str()]).collect(),
                on_shift: false,
                on_break: false,
                leaving: false,
                active: 0,
            })
            .collect::<Vec<_>>();
        let agent_ix = agents.iter().enumerate().map(|(i, a)| (a.id.clone(), i as u32)).collect();
        Sim {
            plan,
            router,
            fx: Vec::new(),
            now: plan.start.at,
            queue: BinaryHeap::new(),
            pending: FxHashMap::default(),
            seq: 0,
            next_arrival: 0,
            tracks: Vec::with_capacity(plan.arrivals.len()),
            by_id: FxHashMap::default(),
            agents,
            agent_ix,
            levels: vec![Level::Normal; groups.len()],
            on_shift: vec![0; groups.len()],
            group_ix,
            open: 0,
            bot_pending: 0,
            stats: Stats::new(groups, plan.start.at),
            commands: 0,
        }
    }

    fn schedule(&mut self, at: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at.max(self.now), self.seq)));
        self.pending.insert(self.seq, ev);
    }

    fn run(&mut self) {
        self.pin_levels();
        // Levels pinned from the window's first instant are in force for
        // the arrivals of that instant, which come before its tick.
        self.sample(self.plan.start.at, false);
        for (a, agent) in self.plan.agents.iter().enumerate() {
            for &(at, step) in &agent.steps {
                self.schedule(at, Ev::Agent(a as u32, step));
            }
        }
        let (end, step) = (self.plan.end, self.plan.step_ms);
        let mut tick = self.plan.start.at;
        loop {
            self.events_until(tick);
            self.now = tick;
            self.command(Command::Tick);
            self.settle();
            // Each sample stands for the step that starts at it: the last one
            // inside the window starts before its end.
            self.sample(tick, tick < end);
            tick += step;
            let arrivals_done = self.next_arrival >= self.plan.arrivals.len();
            let settled = self.open == 0 && self.bot_pending == 0;
            if tick > end && arrivals_done && (settled || tick > end + DRAIN_MS) {
                break;
            }
        }
        self.stats.unfinished = self.open + self.bot_pending;
        self.stats.finish();
    }

    fn pin_levels(&mut self) {
        let actor = Actor { id: "planner".into(), role: Role::Admin };
        for pin in &self.plan.pins {
            let command = Command::SetLevelOverride {
                actor: actor.clone(),
                group: pin.group.clone(),
                level: pin.level,
                from: pin.from,
                until: pin.until,
            };
            self.command(command);
        }
        self.settle();
    }

    /// Applies every arrival and scheduled event due at or before `t`, in time order.
    fn events_until(&mut self, t: Millis) {
        loop {
            let next_event = self.queue.peek().map(|Reverse((at, _))| *at);
            let next_arrival = self.plan.arrivals.get(self.next_arrival).map(|a| a.at.max(self.plan.start.at));
            match (next_event, next_arrival) {
                (Some(e), Some(a)) if a < e && a <= t => self.arrive_next(a),
                (_, Some(a)) if next_event.is_none() && a <= t => self.arrive_next(a),
                (Some(e), _) if e <= t => {
                    let Some(Reverse((at, seq))) = self.queue.pop() else { break };
                    self.now = at;
                    let ev = self.pending.remove(&seq).expect("scheduled event");
                    self.handle(ev);
                }
                _ => break,
            }
        }
    }

    fn arrive_next(&mut self, at: Millis) {
        self.now = at;
        let i = self.next_arrival;
        self.next_arrival += 1;
        let arrival = &self.plan.arrivals[i];
        self.arrive(arrival.inquiry.clone(), arrival.handle_ms, Some(i as u32), i as u64);
    }

    fn command(&mut self, command: Command) -> bool {
        self.commands += 1;
        self.router.handle(self.now, command, &mut self.fx).is_ok()
    }

    fn arrive(&mut self, inquiry: Inquiry, handle_ms: u64, planned: Option<u32>, draw_key: u64) {
        let ix = self.tracks.len() as u32;
        let id = inquiry.id.clone();
        self.by_id.insert(id.clone(), ix);
        self.tracks.push(Track {
            id: id.clone(),
            planned,
            draw_key,
            group: 0,
            level: Level::Normal,
            arrived: self.now,
            handle_ms,
            fate: Fate::Open,
            offer: None,
            attempts: 0,
        });
        if !self.command(Command::Arrive(Box::new(inquiry))) {
            self.tracks[ix as usize].fate = Fate::Gone;
            self.fx.clear();
            return;
        }
        let group = self.router.inquiry(self.now, &id).map_or(0, |v| self.group_ix[&v.group]);
        let level = self.levels[group];
        let track = &mut self.tracks[ix as usize];
        (track.group, track.level) = (group, level);
        self.open += 1;
        self.stats.arrived(group, level, self.now);
        if let Some(patience) = self.plan.patience_ms {
            self.schedule(self.now + patience, Ev::Abandon(ix));
        }
        self.settle();
    }
}
