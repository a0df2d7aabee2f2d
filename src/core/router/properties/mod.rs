//! Property tests: random command sequences applied to the real router and to
//! a tiny model built only from the effects (`model`), compared after every
//! step, in the manner of Vector's disk-buffer model test.
//!
//! After every step: no offer beyond capacity or to an agent who is not
//! AVAILABLE, every inquiry in exactly the state and with exactly the holder
//! the effects say, no waiting HIGH inquiry passed over for a lower one, the
//! router's own invariants hold, and a refused command changed nothing. A
//! second property replays every sequence on a fresh router and expects the
//! same effects.
//!
//! A failure shrinks to a short sequence; `PROPERTIES_TRACE=1` prints every
//! command and its effects while it runs. Shrunk failures become plain tests
//! in `tests.rs` (no proptest regression files are written).

mod model;
mod strategy;

use super::views::{AgentView, GroupView, StateCounts, WaitingView};
use crate::core::command::{Actor, Command, Role};
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::priority;
use crate::core::types::{Band, Id, InquiryState, Millis};
use crate::core::Router;
use model::{Model, Place};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;
use strategy::{inquiry_id, Op, AGENTS, INQUIRIES};

/// Longest generated sequence.
const MAX_OPS: usize = 150;

/// 1,000 sequences per property; failures are kept as tests in `tests.rs`.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() }
}

/// Everything a refused command must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    counts: StateCounts,
    waiting: Vec<WaitingView>,
    agents: Vec<Option<AgentView>>,
    groups: Vec<GroupView>,
    states: Vec<Option<InquiryState>>,
}

/// One offer made in a step, with the inquiries waiting at that moment that
/// its agent was not avoiding.
struct OfferSeen {
    inquiry: Id,
    rank: i64,
    agent: Id,
    rivals: Vec<Id>,
}

/// One applied command: its time, the command, its outcome and its effects.
type Logged = (Millis, Command, Result<(), CoreError>, Vec<Effect>);

/// The router and the model side by side.
struct Harness {
    router: Router,
    now: Millis,
    model: Model,
    /// Every command applied, at its time, with its outcome and effects.
    log: Vec<Logged>,
    /// Queue rank of each inquiry: as last seen waiting (the router keeps it
    /// while offered), or from its score when offered without waiting. A
    /// new arrival or a handoff starts a new wait.
    ranks: BTreeMap<Id, i64>,
    aging_ms: u64,
    /// `PROPERTIES_TRACE=1` prints every step (for reading a shrunk failure).
    trace: bool,
}

impl Harness {
    fn new() -> Harness {
        let settings = strategy::settings();
        let model = Model::new(&settings);
        let aging_ms = settings.priority.aging_interval.as_millis() as u64;
        let router = Router::new(settings).expect("valid settings");
        Harness {
            router,
            now: 1_000_000,
            model,
            log: Vec::new(),
            ranks: BTreeMap::new(),
            aging_ms,
            trace: std::env::var_os("PROPERTIES_TRACE").is_some(),
        }
    }

    /// Whether the model is sure the command must succeed.
    fn must_succeed(&self, cmd: &Command) -> bool {
        let place = |id: &str| self.model.inquiries.get(id);
        let held_by = |id: &str, actor: &Actor, active: bool| {
            actor.role == Role::Agent
                && match place(id) {
                    Some(Place::Offered(a)) => !active && *a == actor.id,
                    Some(Place::Active(a)) => active && *a == actor.id,
                    _ => false,
                }
        };
        match cmd {
            Command::Arrive(q) | Command::ArriveReceived { inquiry: q, .. } => place(&q.id).is_none(),
            Command::Cancel { inquiry, .. } => place(inquiry)
                .is_some_and(|p| !matches!(p, Place::Finished(state, _) if *state != InquiryState::Deflected)),
            Command::Accept { actor, inquiry } | Command::Decline { actor, inquiry, .. } => {
                held_by(inquiry, actor, false)
            }
            Command::Complete { actor, inquiry } => held_by(inquiry, actor, true),
            Command::DesktopConnected { agent } | Command::DesktopDisconnected { agent } => {
                self.model.agents.contains_key(agent)
            }
            Command::Tick | Command::TickQueued { .. } => true,
            _ => false,
        }
    }

    fn observe(&self) -> Observed {
        let r = &self.router;
        Observed {
            counts: r.state_counts(),
            waiting: r.waiting(),
            agents: AGENTS.iter().map(|a| r.agent(a)).collect(),
            groups: r.groups(self.now),
            states: (0..INQUIRIES).map(|n| r.inquiry_state(&inquiry_id(n))).collect(),
        }
    }

    /// Applies one operation to both sides; with `check`, compares them.
    fn step(&mut self, op: &Op, check: bool) -> Result<(), TestCaseError> {
        if let Op::Tick(ms) | Op::TickQueued(ms, _) = op {
            self.now += ms;
        }
        let cmd = strategy::command(&self.model, self.now, op);
        let before = check.then(|| self.observe());
        let mut fx = Vec::new();
        let result = self.router.handle(self.now, cmd.clone(), &mut fx);
        if self.trace {
            eprintln!("@{} {cmd:?}\n  -> {result:?} {fx:?}", self.now);
        }
        self.log.push((self.now, cmd.clone(), result.clone(), fx.clone()));
        if let Err(e) = result {
            let Some(before) = before else { return Ok(()) };
            prop_assert!(!self.must_succeed(&cmd), "{cmd:?} failed: {e}");
            prop_assert!(fx.is_empty(), "refused {cmd:?} ({e}) had effects {fx:?}");
            prop_assert_eq!(&before, &self.observe(), "refused {:?} ({}) changed the router", cmd, e);
            return Ok(());
        }
        let offers = self.take_effects(&cmd, &fx, check)?;
        let Some(before) = before else { return Ok(()) };
        self.compare(&cmd)?;
        let after = self.router.waiting();
        self.no_high_passed_over(&before.waiting, &after, &offers)?;
        self.ranks.extend(after.into_iter().map(|w| (w.id, w.rank)));
        self.router.check_invariants().map_err(|m| TestCaseError::fail(format!("{m}\n  after {cmd:?}")))
    }

    /// Feeds a command that succeeded and its effects to the model, in order;
    /// returns the offers made, each with its rivals at that moment.
    fn take_effects(&mut self, cmd: &Command, fx: &[Effect], check: bool) -> Result<Vec<OfferSeen>, TestCaseError> {
        let now = self.now;
        self.model.command(cmd);
        // An inquiry offered at once ranks from when it was received.
        let mut received = now;
        if let Command::Arrive(q) | Command::ArriveReceived { inquiry: q, .. } = cmd {
            self.ranks.remove(&q.id);
        }
        if let Command::ArriveReceived { received_at, .. } = cmd {
            received = (*received_at).min(now);
        }
        let mut offers = Vec::new();
        for effect in fx {
            match effect {
                Effect::Offer(o) => {
                    let started = priority::rank(o.trace.score, received, self.aging_ms);
                    let rank = *self.ranks.entry(o.inquiry.clone()).or_insert(started);
                    let m = &self.model;
                    let waiting = m.ids_where(|p| *p == Place::Waiting).into_iter();
                    let avoids =
                        |y: &Id| m.excluded.get(y) == Some(&o.agent) || m.excluded_sender.get(y) == Some(&o.agent);
                    let rivals = waiting.filter(|y| !avoids(y)).collect();
                    offers.push(OfferSeen { inquiry: o.inquiry.clone(), rank, agent: o.agent.clone(), rivals });
                }
                Effect::Event(e) if matches!(e.kind, EventKind::Transferred | EventKind::Escalated) => {
                    self.ranks.remove(&e.inquiry);
                }
                _ => {}
            }
            let verdict = self.model.effect(now, effect);
            if check {
                verdict.map_err(|m| TestCaseError::fail(format!("{m}\n  after {cmd:?}\n  effects {fx:#?}")))?;
            }
        }
        if matches!(cmd, Command::Tick | Command::TickQueued { .. }) {
            self.model.forget(now);
        }
        let settled = self.model.settle();
        if check {
            settled.map_err(|m| TestCaseError::fail(format!("{m}\n  after {cmd:?}")))?;
        }
        Ok(offers)
    }

    /// Every inquiry and agent as the model says (properties 1, 2 and 3).
    fn compare(&self, cmd: &Command) -> Result<(), TestCaseError> {
        let r = &self.router;
        for n in 0..INQUIRIES {
            let id = inquiry_id(n);
            let want = self.model.inquiries.get(&id).and_then(Place::state);
            prop_assert_eq!(r.inquiry_state(&id), want, "state of {} after {:?}", id, cmd);
        }
        let mut held = 0;
        for (id, a) in &self.model.agents {
            let view = r.agent(id).ok_or_else(|| TestCaseError::fail(format!("router forgot agent {id}")))?;
            let offered = self.model.ids_where(|p| matches!(p, Place::Offered(h) if h == id));
            let active = self.model.ids_where(|p| matches!(p, Place::Active(h) if h == id));
            let (mut got_offered, mut got_active) = (view.offered.clone(), view.active.clone());
            got_offered.sort();
            got_active.sort();
            prop_assert_eq!(view.status, a.status, "status of {} after {:?}", id, cmd);
            prop_assert_eq!(view.capacity, self.model.capacity(id), "capacity of {} after {:?}", id, cmd);
            prop_assert_eq!(&got_offered, &offered, "offers held by {} after {:?}", id, cmd);
            prop_assert_eq!(&got_active, &active, "chats held by {} after {:?}", id, cmd);
            prop_assert_eq!(view.load as usize, offered.len() + active.len());
            held += offered.len() + active.len();
        }
        let held_by_model = self.model.ids_where(|p| p.holder().is_some()).len();
        prop_assert_eq!(held, held_by_model, "an inquiry is held by no or two agents after {:?}", cmd);
        let c = r.state_counts();
        let count = |s| self.model.inquiries.values().filter(|p| p.state() == Some(s)).count() as u64;
        prop_assert_eq!(c.waiting, count(InquiryState::Waiting));
        prop_assert_eq!(c.offered + c.active, held_by_model as u64);
        prop_assert_eq!(
            c.completed + c.deflected + c.cancelled,
            self.model.inquiries.len() as u64 - c.waiting - c.offered - c.active
        );
        Ok(())
    }

    /// Property 4: an offer of X to agent A never leaves behind a HIGH inquiry
    /// that waited before, during and after the step, that A may serve in one
    /// of its groups, that A was not avoiding, and that ranks above X.
    fn no_high_passed_over(
        &self,
        before: &[WaitingView],
        after: &[WaitingView],
        offers: &[OfferSeen],
    ) -> Result<(), TestCaseError> {
        let r = &self.router;
        for o in offers {
            let x_rank = o.rank;
            let groups: Vec<Id> =
                r.agent(&o.agent).map(|a| a.groups.into_iter().map(|(g, _)| g).collect()).unwrap_or_default();
            for y in before.iter().filter(|y| y.band == Band::High && y.rank > x_rank) {
                let still = after.iter().any(|w| w.id == y.id && w.rank == y.rank && w.group == y.group);
                let eligible = groups.contains(&y.group)
                    || (y.overflowed && r.overflow_targets(&y.group).iter().any(|t| groups.contains(t)));
                if still && eligible && o.rivals.contains(&y.id) && r.can_serve(&o.agent, &y.id) {
                    return Err(TestCaseError::fail(format!(
                        "{} (rank {}) went to {} while HIGH {} (rank {}) waited in {}",
                        o.inquiry, x_rank, o.agent, y.id, y.rank, y.group
                    )));
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(config())]

    /// Properties 1-4 and 6 after every step of every sequence.
    #[test]
    fn the_router_agrees_with_the_model_after_every_step(ops in strategy::ops(MAX_OPS)) {
        let mut h = Harness::new();
        for op in &ops {
            h.step(op, true)?;
        }
    }

    /// Property 5: the same commands at the same times give the same effects,
    /// also to a router shown each next command ahead (`Router::prepare`, as
    /// the engine does).
    #[test]
    fn the_same_inputs_give_the_same_effects(ops in strategy::ops(MAX_OPS)) {
        let mut first = Harness::new();
        for op in &ops {
            first.step(op, false)?;
        }
        let mut second = Router::new(strategy::settings()).expect("valid settings");
        for (i, (now, cmd, result, fx)) in first.log.iter().enumerate() {
            if let Some((_, next, ..)) = first.log.get(i + 1) {
                second.prepare(next);
            }
            let mut again = Vec::new();
            prop_assert_eq!(&second.handle(*now, cmd.clone(), &mut again), result, "{:?} at {}", cmd, now);
            prop_assert_eq!(&again, fx, "{:?} at {}", cmd, now);
        }
    }
}
