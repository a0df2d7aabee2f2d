//! Offers and presence: accept timeouts, AWAY, breaks, OFFLINE and the
//! desktop's heartbeat.

use super::tests::{bench, events};
use crate::core::command::{Actor, Command};
use crate::core::effect::{Effect, EventKind};
use crate::core::snapshot::Change;
use crate::core::testkit::{inquiry, offer_pairs, offers, presence};
use crate::core::types::{AgentStatus, Category, InquiryState};

#[test]
fn an_unaccepted_offer_times_out_goes_to_another_agent_and_two_timeouts_set_away() {
    let mut b = bench();
    b.agent(presence("slow", &[("orders", 5)], 5));
    b.agent(presence("quick", &[("orders", 3)], 5));
    let fx = b.arrive(inquiry("q1", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "slow");
    let fx = b.advance(30_000);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "quick".to_string())]);
    assert_eq!(offers(&fx)[0].attempt, 2);
    assert!(events(&fx).contains(&EventKind::TimedOut));
    assert_eq!(withdrawals(&fx), [("slow", "accept timeout")]);
    b.arrive(inquiry("q2", Category::Order));
    let fx = b.advance(30_000);
    assert!(fx.iter().any(|e| matches!(e, Effect::AgentStatusChanged { status: AgentStatus::Away, .. })));
    assert_eq!(b.router.agent("slow").unwrap().status, AgentStatus::Away);
    // The desktop hears of AWAY only through the withdrawal; it must say so.
    assert!(withdrawals(&fx).contains(&("slow", super::returns::AWAY_AFTER_TIMEOUTS)), "{:?}", withdrawals(&fx));
}

fn withdrawals(fx: &[Effect]) -> Vec<(&str, &'static str)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Withdraw { agent, reason, .. } => Some((agent.as_str(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn offers_timing_out_together_set_away_without_a_new_offer_taken_back_at_once() {
    let mut b = bench();
    b.agent(presence("slow", &[("orders", 5)], 2));
    b.arrive(inquiry("q1", Category::Order));
    b.arrive(inquiry("q2", Category::Order));
    b.advance(1_000);
    // q3 waits: "slow" is full. Both offers run out in one tick: the first
    // alone would leave "slow" AVAILABLE with a free slot for q3, the second
    // sets it AWAY. Its desktop must not be offered q3 only to have it
    // withdrawn in the same breath.
    b.arrive(inquiry("q3", Category::Order));
    let fx = b.advance(29_000);
    assert_eq!(b.router.agent("slow").unwrap().status, AgentStatus::Away);
    assert!(offers(&fx).is_empty(), "{:?}", offer_pairs(&fx));
    let withdrawn: Vec<_> = withdrawals(&fx).into_iter().map(|(agent, _)| agent).collect();
    assert_eq!(withdrawn, ["slow", "slow"]);
    assert!(withdrawals(&fx).contains(&("slow", super::returns::AWAY_AFTER_TIMEOUTS)), "{:?}", withdrawals(&fx));
    for q in ["q1", "q2", "q3"] {
        assert_eq!(b.router.inquiry_state(q), Some(InquiryState::Waiting), "{q}");
    }
}

#[test]
fn a_desktop_resending_available_does_not_clear_its_timeouts() {
    let mut b = bench();
    b.agent(presence("slow", &[("orders", 5)], 5));
    b.agent(presence("quick", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.advance(30_000);
    // The same presence again (a desktop refreshing it) is not a new start.
    b.agent(presence("slow", &[("orders", 5)], 5));
    b.arrive(inquiry("q2", Category::Order));
    b.advance(30_000);
    assert_eq!(b.router.agent("slow").unwrap().status, AgentStatus::Away);
}

#[test]
fn extended_offers_time_out_that_much_later_and_stay_recorded() {
    let mut b = bench();
    b.router.track_changes();
    b.agent(presence("slow", &[("orders", 5)], 5));
    b.agent(presence("quick", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    let offered_at = b.now;
    let fx = b.advance(20_000);
    assert!(offers(&fx).is_empty());
    b.router.take_changes();
    // The adapters could not deliver anything for 25 s: the 30 s accept
    // timeout restarts its count from where it was.
    let renewed = b.apply(Command::ExtendOffers { by: 25_000 });
    let expires_at = offered_at + 55_000;
    let (inquiry, agent) = ("q1".into(), "slow".into());
    assert_eq!(renewed, [Effect::OfferRenewed { inquiry, agent, expires_at }], "the desktop learns the new deadline");
    assert_eq!(b.router.inquiry(b.now, "q1").unwrap().offer_expires_at, Some(expires_at));
    let recorded: Vec<_> = b
        .router
        .take_changes()
        .into_iter()
        .filter_map(|c| match c {
            Change::Inquiry(r) => Some((r.inquiry.id.to_string(), r.deadline)),
            _ => None,
        })
        .collect();
    assert_eq!(recorded, [("q1".to_string(), Some(offered_at + 55_000))], "the moved deadline is recorded");
    assert!(offers(&b.advance(34_000)).is_empty(), "54 s after the offer, 29 s of it counted");
    let fx = b.advance(1_000);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "quick".to_string())]);
    b.router.check_invariants().unwrap();
}

#[test]
fn offline_returns_offers_and_chats_with_a_system_note_break_keeps_chats() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.arrive(inquiry("active", Category::Order));
    b.accept("a", "active");
    b.arrive(inquiry("offered", Category::Order));
    let mut on_break = presence("a", &[("orders", 3)], 5);
    on_break.status = AgentStatus::Break;
    b.agent(on_break);
    assert_eq!(b.router.inquiry_state("active"), Some(InquiryState::Active));
    assert_eq!(b.router.inquiry_state("offered"), Some(InquiryState::Waiting));
    let mut offline = presence("a", &[("orders", 3)], 5);
    offline.status = AgentStatus::Offline;
    let fx = b.agent(offline);
    let withdrawn = fx.iter().any(
        |e| matches!(e, Effect::Withdraw { inquiry, agent, .. } if inquiry.as_str() == "active" && agent.as_str() == "a"),
    );
    assert!(withdrawn, "the desktop is told the chat is no longer its own");
    let requeued: Vec<_> =
        fx.iter().filter(|e| matches!(e, Effect::Event(ev) if ev.kind == EventKind::Requeued)).collect();
    assert_eq!(requeued.len(), 1, "the chat is REQUEUED once, not again for waiting: {requeued:?}");
    let view = b.router.inquiry(b.now, "active").unwrap();
    assert_eq!(view.state, InquiryState::Waiting);
    assert_eq!(view.note.unwrap().author, "system");
    let steps: Vec<_> = view.timeline.iter().map(|t| (t.kind, t.agent.as_deref(), t.score)).collect();
    assert_eq!(
        steps,
        [
            (EventKind::Offered, Some("a"), 40),
            (EventKind::Accepted, Some("a"), 40),
            (EventKind::Requeued, Some("a"), 40),
        ],
        "one REQUEUED, naming the agent; every step with its score"
    );
    let fx = b.agent(presence("b", &[("orders", 3)], 5));
    assert_eq!(offers(&fx).len(), 2);
}

#[test]
fn a_desktop_gone_past_the_grace_period_sets_away_and_returns_offers_only() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.arrive(inquiry("chat", Category::Order));
    b.accept("a", "chat");
    b.arrive(inquiry("offer", Category::Order));
    b.apply(Command::DesktopDisconnected { agent: "a".into() });
    b.advance(29_000);
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Available);
    b.advance(1_000);
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Away);
    assert_eq!(b.router.inquiry_state("chat"), Some(InquiryState::Active));
    assert_eq!(b.router.inquiry_state("offer"), Some(InquiryState::Waiting));
}

#[test]
fn a_desktop_back_within_the_grace_period_loses_nothing() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.arrive(inquiry("offer", Category::Order));
    b.apply(Command::DesktopDisconnected { agent: "a".into() });
    b.advance(10_000);
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.advance(25_000);
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Available);
}

#[test]
fn a_presence_with_too_many_new_skills_is_refused_and_interns_none_of_them() {
    let mut b = bench();
    let with_skills = |agent: &str, skills: Vec<String>| crate::core::command::Presence {
        skills,
        ..presence(agent, &[("orders", 3)], 3)
    };
    b.agent(with_skills("a", (0..60).map(|i| format!("s{i}")).collect()));
    let set = |agent: &str, skills: Vec<String>| Command::SetPresence {
        actor: crate::core::command::Actor::agent(agent),
        presence: with_skills(agent, skills),
    };
    let err = b.try_apply(set("b", (0..5).map(|i| format!("new{i}")).collect())).unwrap_err();
    assert!(err.to_string().contains("63 distinct skills"), "{err}");
    // None of the refused request's names took a place: three still fit.
    b.try_apply(set("c", (0..3).map(|i| format!("other{i}")).collect())).expect("room for three");
}

#[test]
fn occupancy_counts_the_chats_of_agents_on_break_or_fatigued() {
    let mut b = bench();
    b.agent(presence("a1", &[("orders", 4)], 4));
    for id in ["q1", "q2"] {
        b.arrive(inquiry(id, Category::Order));
        b.accept("a1", id);
    }
    let occupancy = |b: &crate::core::testkit::Bench| {
        b.router.groups(b.now).into_iter().find(|g| &*g.id == "orders").expect("orders").occupancy
    };
    assert_eq!(occupancy(&b), 0.5);
    let mut on_break = presence("a1", &[("orders", 4)], 4);
    on_break.status = AgentStatus::Break;
    b.agent(on_break);
    assert_eq!(occupancy(&b), 0.5, "a break takes no new work but keeps its chats");
    let mut away = presence("a1", &[("orders", 4)], 4);
    away.status = AgentStatus::Away;
    b.agent(away);
    assert_eq!(occupancy(&b), 0.0, "nobody on duty");
    b.agent(presence("a1", &[("orders", 4)], 4));
    b.advance(46 * 60_000);
    let fatigued = b.router.groups(b.now).into_iter().find(|g| &*g.id == "orders").unwrap();
    assert_eq!(fatigued.capacity, 0, "fatigued: no new work at NORMAL");
    assert_eq!(fatigued.occupancy, 0.5, "still holding its chats");
}

#[test]
fn a_decline_between_two_timeouts_breaks_the_run() {
    let mut b = bench();
    b.agent(presence("slow", &[("orders", 5)], 1));
    b.arrive(inquiry("q1", Category::Order));
    b.advance(30_000); // q1 timed out: one
    let fx = b.arrive(inquiry("q2", Category::Order));
    assert_eq!(offer_pairs(&fx), [("q2".to_string(), "slow".to_string())]);
    b.apply(Command::Decline { actor: crate::core::command::Actor::agent("slow"), inquiry: "q2".into(), reason: None });
    b.apply(Command::Cancel { inquiry: "q2".into(), shop: None });
    let fx = b.advance(30_000); // q1's exclusion is over: offered again
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "slow".to_string())]);
    b.advance(30_000); // timed out again, but not two in a row
    assert_eq!(b.router.agent("slow").unwrap().status, AgentStatus::Available);
}

#[test]
fn a_decline_reason_goes_on_the_declined_step_and_event_and_must_be_plain_text() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 5)], 5));
    b.agent(presence("b", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    let decline = |reason: &str| Command::Decline {
        actor: crate::core::command::Actor::agent("a"),
        inquiry: "q1".into(),
        reason: Some(reason.into()),
    };
    for bad in ["two\nlines", &"x".repeat(513)] {
        let refused = b.try_apply(decline(bad));
        assert!(matches!(refused, Err(crate::core::error::CoreError::InvalidArgument(_))), "{refused:?}");
    }
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Offered), "a refused decline changes nothing");
    let fx = b.apply(decline("customer writes Cantonese only"));
    let event = fx.iter().find_map(|e| match e {
        Effect::Event(ev) if ev.kind == EventKind::Declined => Some(ev),
        _ => None,
    });
    assert_eq!(event.expect("DECLINED").detail.as_deref(), Some("customer writes Cantonese only"));
    let view = b.router.inquiry(b.now, "q1").unwrap();
    let step = view.timeline.iter().find(|t| t.kind == EventKind::Declined).expect("DECLINED step");
    assert_eq!(step.detail.as_deref(), Some("customer writes Cantonese only"));
}

#[test]
fn an_agent_the_router_does_not_know_is_told_so_whatever_the_inquiry() {
    use crate::core::command::Actor;
    use crate::core::error::CoreError;
    let mut b = bench();
    b.agent(presence("a", &[("orders", 5)], 5));
    b.arrive(inquiry("offered", Category::Order));
    b.agent(presence("a", &[("orders", 5)], 1));
    b.arrive(inquiry("waiting", Category::Order));
    for id in ["offered", "waiting"] {
        let ghost = Actor::agent("ghost");
        for command in [
            Command::Accept { actor: ghost.clone(), inquiry: id.into() },
            Command::Decline { actor: ghost.clone(), inquiry: id.into(), reason: None },
            Command::Complete { actor: ghost.clone(), inquiry: id.into() },
        ] {
            let refused = b.try_apply(command);
            assert!(matches!(refused, Err(CoreError::UnknownAgent(_))), "{id}: {refused:?}");
        }
    }
}

#[test]
fn work_given_back_is_requeued_once_in_the_queue_it_came_from() {
    let mut b = bench();
    b.agent(presence("helper", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::PreSales));
    b.advance(60_000); // overflows to the orders agent
    b.accept("helper", "q1");
    let mut offline = presence("helper", &[("orders", 3)], 5);
    offline.status = AgentStatus::Offline;
    let fx = b.agent(offline);
    let requeued: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Event(ev) if ev.kind == EventKind::Requeued => Some(ev.group.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(requeued, ["pre_sales"], "once, naming the queue it waits in");
    let view = b.router.inquiry(b.now, "q1").unwrap();
    assert_eq!(view.timeline.last().map(|t| (t.kind, t.group.as_str())), Some((EventKind::Requeued, "pre_sales")));
}

#[test]
fn names_only_inquiries_bring_never_lock_agents_out_and_wait_for_an_agent_who_offers_them() {
    let mut b = bench();
    // A publisher sends 64 languages and 64 skills no agent offers.
    for i in 0..64 {
        let mut q = inquiry(&format!("q{i}"), Category::Order);
        q.language = format!("x{i}").into();
        q.required_skills = vec![format!("sku-{i}")];
        b.arrive(q);
    }
    let mut ja = inquiry("ja-1", Category::Order);
    ja.language = "ja".into();
    ja.required_skills = vec!["invoice".into()];
    b.arrive(ja);
    b.agent(presence("zh", &[("orders", 3)], 5));
    assert_eq!(b.router.inquiry_state("ja-1"), Some(InquiryState::Waiting));
    // An agent with a language and a skill nobody offered before can register,
    // and the inquiry that waited for them is theirs.
    let mut p = presence("ja-agent", &[("orders", 3)], 5);
    p.languages = vec!["ja".into()];
    p.skills = vec!["invoice".into()];
    let fx = b.agent(p);
    assert_eq!(offer_pairs(&fx), [("ja-1".to_string(), "ja-agent".to_string())]);
    // The others still wait, for agents who may never come.
    assert_eq!(b.router.inquiry_state("q7"), Some(InquiryState::Waiting));
}

#[test]
fn an_agent_whose_desktop_dropped_gets_no_new_work_until_it_is_back() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 5)], 5));
    b.agent(presence("b", &[("orders", 1)], 5));
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.apply(Command::DesktopDisconnected { agent: "a".into() });
    let fx = b.arrive(inquiry("q1", Category::Order));
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "b".to_string())], "not to the unseen desktop of a");
    let fx = b.arrive(inquiry("q2", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "b");
    b.apply(Command::Decline { actor: Actor::agent("b"), inquiry: "q2".into(), reason: None });
    assert_eq!(b.router.inquiry_state("q2"), Some(InquiryState::Waiting), "a is not offered it either");
    // Back within the grace: the waiting work comes to it at once.
    let fx = b.apply(Command::DesktopConnected { agent: "a".into() });
    assert_eq!(offer_pairs(&fx), [("q2".to_string(), "a".to_string())]);
}

#[test]
fn a_tick_with_commands_still_queued_leaves_open_the_offers_due_after_they_were_sent() {
    let mut b = bench();
    b.agent(presence("ann", &[("orders", 3)], 1));
    b.arrive(inquiry("q1", Category::Order));
    let offered_at = b.now;
    // 31 s later (the accept timeout is 30 s), with commands sent 29 s after
    // the offer still queued: an Accept sent in time may be among them.
    b.now = offered_at + 31_000;
    b.apply(Command::TickQueued { since: offered_at + 29_000 });
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Offered));
    b.accept("ann", "q1");
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Active));
    // Once the commands sent before the deadline are handled, it times out.
    b.arrive(inquiry("q2", Category::Order));
    b.complete("ann", "q1");
    let offered_at = b.now;
    b.now = offered_at + 31_000;
    b.apply(Command::TickQueued { since: offered_at + 30_000 });
    assert_eq!(b.router.inquiry_state("q2"), Some(InquiryState::Waiting), "timed out at its deadline");
}

#[test]
fn a_tick_with_commands_still_queued_leaves_a_desktop_its_grace_until_they_are_handled() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.apply(Command::DesktopDisconnected { agent: "a".into() });
    let gone_at = b.now;
    // Past the 30 s grace, with commands sent within it still queued: the
    // desktop's reconnect may be among them.
    b.now = gone_at + 31_000;
    b.apply(Command::TickQueued { since: gone_at + 29_000 });
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Available);
    b.apply(Command::DesktopConnected { agent: "a".into() });
    b.advance(60_000);
    assert_eq!(b.router.agent("a").unwrap().status, AgentStatus::Available, "back in time");
}
