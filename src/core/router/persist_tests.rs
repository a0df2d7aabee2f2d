//! Recording and restoring: a router rebuilt from its records holds every
//! inquiry in the same place, and a crash between writes is repaired.

use crate::core::command::{Actor, Command, Role, TransferTarget};
use crate::core::effect::Effect;
use crate::core::router::Router;
use crate::core::settings::RoutingSettings;
use crate::core::snapshot::{Change, Restored};
use crate::core::testkit::{inquiry, offers, presence, Bench};
use crate::core::types::{AgentStatus, Category, HandoffNote, InquiryState, Level};
use std::collections::BTreeMap;

/// A key-value store of records, as the persistence adapter keeps them.
#[derive(Default)]
struct Store {
    inquiries: BTreeMap<String, crate::core::snapshot::InquiryRecord>,
    agents: BTreeMap<String, crate::core::snapshot::AgentRecord>,
    levels: Option<crate::core::snapshot::LevelsRecord>,
}

impl Store {
    fn apply(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Inquiry(r) => {
                    self.inquiries.insert(r.inquiry.id.to_string(), *r);
                }
                Change::Forget(id) => {
                    self.inquiries.remove(&*id);
                }
                Change::Agent(a) => {
                    self.agents.insert(a.id.to_string(), a);
                }
                Change::Levels(l) => self.levels = Some(l),
            }
        }
    }

    fn restored(&self) -> Restored {
        Restored {
            inquiries: self.inquiries.values().cloned().collect(),
            agents: self.agents.values().cloned().collect(),
            levels: self.levels.clone(),
        }
    }
}

fn recorded_bench() -> Bench {
    let mut b = Bench::new(RoutingSettings::default());
    b.router.track_changes();
    b
}

fn sync(b: &mut Bench, store: &mut Store) {
    store.apply(b.router.take_changes());
}

fn places(router: &Router, ids: &[&str]) -> Vec<(InquiryState, Option<String>, String)> {
    ids.iter()
        .map(|id| {
            let v = router.inquiry(0, id).expect("known");
            (v.state, v.owner.map(|o| o.to_string()), v.group.to_string())
        })
        .collect()
}

#[test]
fn a_restored_router_holds_every_inquiry_where_it_was() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.agent(presence("b", &[("pre_sales", 3), ("orders", 2)], 1));
    for (id, c) in [
        ("o1", Category::Order),
        ("o2", Category::Order),
        ("o3", Category::Logistics),
        ("p1", Category::PreSales),
        ("r1", Category::AfterSalesRefund),
    ] {
        b.arrive(inquiry(id, c));
    }
    b.accept("a", "o1");
    b.apply(Command::Transfer {
        actor: Actor::agent("a"),
        inquiry: "o1".into(),
        target: TransferTarget::Group("after_sales".into()),
        note: HandoffNote { summary: "refund instead".into(), ..HandoffNote::default() },
    });
    b.apply(Command::Cancel { inquiry: "o3".into(), shop: None });
    let admin = Actor { id: "ops".into(), role: Role::Admin };
    let (from, until) = (b.now, b.now + 600_000);
    b.apply(Command::SetLevelOverride { actor: admin, group: Some("orders".into()), level: Level::Peak, from, until });
    sync(&mut b, &mut store);

    let ids = ["o1", "o2", "o3", "p1", "r1"];
    let (restored, fx) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    assert!(offers(&fx).is_empty(), "nothing was due: {fx:?}");
    restored.check_invariants().unwrap();
    assert_eq!(places(&restored, &ids), places(&b.router, &ids));
    assert_eq!(restored.state_counts(), b.router.state_counts());
    assert_eq!(restored.agent("a").unwrap().load, b.router.agent("a").unwrap().load);
    assert_eq!(restored.router_level(), Level::Peak);
    let note = restored.inquiry(0, "o1").unwrap().note.cloned().unwrap();
    assert_eq!(note.summary, "refund instead");
    for id in ids {
        let timeline = |router: &Router| router.inquiry(0, id).unwrap().timeline;
        assert_eq!(timeline(&restored), timeline(&b.router), "{id}: every step, its names, trace, note and detail");
    }
    let o1 = timeline_kinds_with_notes(&restored, "o1");
    assert!(o1.contains(&("TRANSFERRED", Some("refund instead".to_string()))), "{o1:?}");
    // Ids stay known: a redelivered arrival is a duplicate.
    let mut fx = Vec::new();
    let mut restored = restored;
    assert!(restored.handle(b.now, Command::Arrive(Box::new(inquiry("o3", Category::Order))), &mut fx).is_err());
}

fn timeline_kinds_with_notes(router: &Router, id: &str) -> Vec<(&'static str, Option<String>)> {
    let view = router.inquiry(0, id).unwrap();
    view.timeline.iter().map(|t| (t.kind.name(), t.note.as_ref().map(|n| n.summary.clone()))).collect()
}

#[test]
fn a_timeline_naming_a_group_or_agent_no_longer_known_is_restored_as_recorded() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.arrive(inquiry("o1", Category::Order));
    b.accept("a", "o1");
    b.apply(Command::Complete { actor: Actor::agent("a"), inquiry: "o1".into() });
    sync(&mut b, &mut store);
    // Recorded under a configuration with a group since removed, by an agent
    // whose own record was lost.
    for step in &mut store.inquiries.get_mut("o1").unwrap().timeline {
        step.group = "retired_team".into();
        if step.agent.is_some() {
            step.agent = Some("agent-gone".into());
        }
    }
    store.agents.clear();
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    let timeline = restored.inquiry(0, "o1").unwrap().timeline;
    assert!(timeline.iter().all(|t| &*t.group == "retired_team"), "{timeline:?}");
    let agents: Vec<_> = timeline.iter().filter_map(|t| t.agent.as_deref()).collect();
    assert_eq!(agents, ["agent-gone", "agent-gone", "agent-gone"], "offered, accepted, completed");
}

#[test]
fn offers_that_expired_while_down_time_out_at_restore_and_move_on() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.agent(presence("b", &[("orders", 1)], 2));
    b.arrive(inquiry("o1", Category::Order));
    sync(&mut b, &mut store);
    let later = b.now + 31_000;
    let (mut restored, fx) = Router::restore(RoutingSettings::default(), store.restored(), later).unwrap();
    restored.check_invariants().unwrap();
    assert!(fx.iter().any(|e| matches!(e, Effect::Event(ev) if ev.kind == crate::core::effect::EventKind::TimedOut)));
    assert_eq!(offers(&fx)[0].attempt, 2, "offered again, the attempt counted");
    assert_eq!(offers(&fx)[0].agent.as_str(), "b");
    // The catch-up is itself recorded.
    assert!(restored
        .take_changes()
        .iter()
        .any(|c| matches!(c, Change::Inquiry(r) if r.inquiry.id.as_str() == "o1" && r.attempts == 2)));
    // Not held against `a`, whose desktop could not accept while the router
    // was down: one more timeout of its own does not make two in a row.
    let mut b = Bench { router: restored, now: later, check: true };
    b.apply(Command::DesktopConnected { agent: "a".into() });
    let fx = b.arrive(inquiry("o2", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "a");
    b.advance(31_000);
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Available);
}

#[test]
fn a_declined_inquiry_still_avoids_its_agent_for_a_while_after_a_restore() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.arrive(inquiry("o1", Category::Order));
    b.apply(Command::Decline { actor: Actor::agent("a"), inquiry: "o1".into(), reason: None });
    sync(&mut b, &mut store);
    let later = b.now + 1_000;
    let (restored, fx) = Router::restore(RoutingSettings::default(), store.restored(), later).unwrap();
    assert!(offers(&fx).is_empty(), "`a` declined it a second ago: {:?}", offers(&fx));
    let mut b = Bench { router: restored, now: later, check: true };
    b.apply(Command::DesktopConnected { agent: "a".into() });
    let fx = b.advance(30_000);
    assert_eq!(offers(&fx).iter().map(|o| (o.inquiry.as_str(), o.agent.as_str())).collect::<Vec<_>>(), [("o1", "a")]);
}

#[test]
fn an_offer_that_expired_while_down_stays_first_in_line_for_its_only_agent() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 1));
    b.arrive(inquiry("o1", Category::Order));
    b.advance(1_000);
    b.arrive(inquiry("o2", Category::Order));
    sync(&mut b, &mut store);
    let later = b.now + 31_000;
    let (restored, fx) = Router::restore(RoutingSettings::default(), store.restored(), later).unwrap();
    restored.check_invariants().unwrap();
    let offered: Vec<_> = offers(&fx).iter().map(|o| o.inquiry.to_string()).collect();
    assert_eq!(offered, ["o1"], "the agent never saw it: the oldest goes to them again, not the newer o2");
}

#[test]
fn work_held_by_an_agent_whose_record_was_lost_goes_back_to_the_queue() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.arrive(inquiry("o1", Category::Order));
    b.accept("a", "o1");
    sync(&mut b, &mut store);
    store.agents.clear(); // as if the crash came between the two writes
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    restored.check_invariants().unwrap();
    assert_eq!(restored.inquiry_state("o1"), Some(InquiryState::Waiting));
}

#[test]
fn an_offline_agent_keeps_nothing_and_an_away_one_keeps_its_chats() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 3));
    b.arrive(inquiry("o1", Category::Order));
    b.accept("a", "o1");
    b.arrive(inquiry("o2", Category::Order));
    sync(&mut b, &mut store);
    let mut away = store.agents["a"].clone();
    away.status = AgentStatus::Away;
    store.agents.insert("a".into(), away);
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    assert_eq!(restored.inquiry_state("o1"), Some(InquiryState::Active));
    assert_eq!(restored.inquiry_state("o2"), Some(InquiryState::Waiting), "an offer to a non-AVAILABLE agent returns");
    restored.check_invariants().unwrap();
}

#[test]
fn a_desktop_that_does_not_come_back_after_a_restart_is_set_away() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 3));
    sync(&mut b, &mut store);
    let (mut restored, _) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    let mut fx = Vec::new();
    restored.handle(b.now + 30_000, Command::Tick, &mut fx).unwrap();
    assert_eq!(restored.agent("a").unwrap().status, AgentStatus::Away);
}

#[test]
fn unrecorded_routers_collect_nothing() {
    let mut b = Bench::new(RoutingSettings::default());
    b.agent(presence("a", &[("orders", 3)], 3));
    b.arrive(inquiry("o1", Category::Order));
    assert!(b.router.take_changes().is_empty());
}

#[test]
fn a_restart_publishes_again_the_deflections_not_known_stored_and_those_of_its_last_two_minutes() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    super::tests::pin(&mut b, Some("pre_sales"), Level::Surge);
    b.arrive(inquiry("early", Category::PreSales));
    b.arrive(inquiry("early-unstored", Category::PreSales));
    b.apply(Command::DeflectionStored { inquiry: "early".into() });
    b.now += 180_000;
    for id in ["late1", "back", "late2"] {
        b.arrive(inquiry(id, Category::PreSales));
        b.now += 10_000;
    }
    let mut back = inquiry("back", Category::PreSales);
    back.bot_attempted = true;
    b.arrive(back);
    sync(&mut b, &mut store);
    // Down for ten minutes: what counts is when it stopped, not when it starts.
    let (_, fx) = Router::restore(RoutingSettings::default(), store.restored(), b.now + 600_000).unwrap();
    let mut resent: Vec<&str> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::DeflectionResent { inquiry, .. } => Some(inquiry.as_str()),
            _ => None,
        })
        .collect();
    resent.sort_unstable();
    assert_eq!(
        resent,
        ["early-unstored", "late1", "late2"],
        "not the one from before that the stream stored, nor the one the bot handed back"
    );
}

#[test]
fn average_handle_times_are_recorded_within_a_second() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    sync(&mut b, &mut store);
    let before = b.router.groups(b.now).into_iter().find(|g| &*g.id == "orders").unwrap().handle_secs;
    b.arrive(inquiry("o1", Category::Order));
    b.accept("a", "o1");
    b.advance(600_000);
    sync(&mut b, &mut store);
    b.apply(Command::Complete { actor: Actor::agent("a"), inquiry: "o1".into() });
    b.advance(1_000);
    sync(&mut b, &mut store);
    let handle_secs = |r: &Router, now| r.groups(now).into_iter().find(|g| &*g.id == "orders").unwrap().handle_secs;
    let moved = handle_secs(&b.router, b.now);
    assert!(moved > before, "a 10-minute chat moves the average: {before} -> {moved}");
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), b.now).unwrap();
    assert_eq!(handle_secs(&restored, b.now), moved, "staffing advice after a restart uses the same handle time");
}

#[test]
fn a_customers_previous_agent_is_still_preferred_after_a_restore() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("expert", &[("orders", 5)], 5));
    b.agent(presence("regular", &[("orders", 3)], 5));
    let mut first = inquiry("q1", Category::Order);
    first.customer.id = "alice".into();
    b.arrive(first);
    b.apply(Command::Decline { actor: Actor::agent("expert"), inquiry: "q1".into(), reason: None });
    b.accept("regular", "q1");
    b.complete("regular", "q1");
    sync(&mut b, &mut store);
    let later = b.now + 60_000;
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), later).unwrap();
    let mut b = Bench { router: restored, now: later, check: true };
    for agent in ["expert", "regular"] {
        b.apply(Command::DesktopConnected { agent: agent.into() });
    }
    let mut again = inquiry("q2", Category::Order);
    again.customer.id = "alice".into();
    let fx = b.arrive(again);
    assert_eq!(offers(&fx)[0].agent.as_str(), "regular");
    assert_eq!(offers(&fx)[0].trace.rule, Some(crate::core::types::Rule::Sticky));
}

#[test]
fn waiting_work_at_a_restore_goes_to_the_most_proficient_free_agent_first() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    // Restored first (by id), least proficient.
    b.agent(presence("ann", &[("orders", 1)], 1));
    b.agent(presence("zoe", &[("orders", 5)], 1));
    b.arrive(inquiry("o1", Category::Order));
    b.arrive(inquiry("o2", Category::Order));
    b.accept("zoe", "o1");
    b.accept("ann", "o2");
    b.arrive(inquiry("waiting", Category::Order));
    sync(&mut b, &mut store);
    b.complete("zoe", "o1");
    b.complete("ann", "o2");
    // The crash came before the offer of `waiting` was recorded: at the
    // restore it waits, and both agents are free.
    let changes = b.router.take_changes();
    store.apply(
        changes
            .into_iter()
            .filter(|c| !matches!(c, Change::Inquiry(r) if r.inquiry.id.as_str() == "waiting"))
            .collect(),
    );
    let (_, fx) = Router::restore(RoutingSettings::default(), store.restored(), b.now + 1_000).unwrap();
    let offered: Vec<_> = offers(&fx).iter().map(|o| (o.inquiry.to_string(), o.agent.to_string())).collect();
    assert_eq!(offered, [("waiting".to_string(), "zoe".to_string())]);
}

#[test]
fn the_longest_idle_agent_is_still_first_after_a_restore() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3)], 2));
    b.agent(presence("b", &[("orders", 3)], 2));
    b.arrive(inquiry("q1", Category::Order));
    b.accept("a", "q1");
    b.complete("a", "q1");
    sync(&mut b, &mut store);
    let later = b.now + 1_000;
    let (restored, _) = Router::restore(RoutingSettings::default(), store.restored(), later).unwrap();
    let mut b = Bench { router: restored, now: later, check: true };
    for agent in ["a", "b"] {
        b.apply(Command::DesktopConnected { agent: agent.into() });
    }
    let fx = b.arrive(inquiry("q2", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "b", "b has waited longest for work");
}

#[test]
fn what_a_restore_cannot_keep_under_a_changed_configuration_is_said() {
    let mut b = recorded_bench();
    let mut store = Store::default();
    b.agent(presence("a", &[("orders", 3), ("pre_sales", 3)], 2));
    super::tests::pin(&mut b, Some("pre_sales"), Level::Surge);
    b.arrive(inquiry("q1", Category::PreSales));
    sync(&mut b, &mut store);
    // `pre_sales` is renamed `presales` in the new configuration.
    let mut settings = RoutingSettings::default();
    settings.groups.iter_mut().filter(|g| g.id == "pre_sales").for_each(|g| g.id = "presales".into());
    for g in &mut settings.groups {
        g.overflow.iter_mut().filter(|o| *o == "pre_sales").for_each(|o| *o = "presales".into());
    }
    let (mut restored, _) = Router::restore(settings, store.restored(), b.now).unwrap();
    let notes = restored.take_restore_notes().join("\n");
    for expected in ["override of group `pre_sales`", "agent `a` is no longer in pre_sales", "1 inquiries recorded"] {
        assert!(notes.contains(expected), "{expected} in:\n{notes}");
    }
    assert!(restored.take_restore_notes().is_empty(), "taken once");
}
