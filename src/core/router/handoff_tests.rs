//! Handoffs: transfer and escalation, their notes and limits, and what the
//! agent who held the inquiry is told.

use super::tests::{admin, bench};
use crate::core::command::{Actor, Command, Role, TransferTarget};
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::testkit::{inquiry, offer_pairs, offers, presence, Bench};
use crate::core::types::{AgentStatus, Band, Category, HandoffNote, InquiryState, Rule};

/// `actor` transfers inquiry `q1` to `group` with `note`.
fn to_group(actor: Actor, group: &str, note: HandoffNote) -> Command {
    Command::Transfer { actor, inquiry: "q1".into(), target: TransferTarget::Group(group.into()), note }
}

/// `actor` escalates inquiry `q1` with `note`.
fn escalate(actor: Actor, note: HandoffNote) -> Command {
    Command::Escalate { actor, inquiry: "q1".into(), note }
}

#[test]
fn transfer_carries_the_note_to_the_target_group_and_only_the_holder_may_transfer() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    b.agent(presence("ord", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::PreSales));
    b.accept("pre", "q1");
    let note = HandoffNote {
        summary: "wants to change the address".into(),
        attempted: "checked the order".into(),
        customer_expectation: "new address today".into(),
        ..HandoffNote::default()
    };
    let transfer = |actor: &str| to_group(Actor::agent(actor), "orders", note.clone());
    let denied = b.try_apply(transfer("ord"));
    assert!(matches!(denied, Err(CoreError::PermissionDenied(_))), "{denied:?}");
    let fx = b.apply(transfer("pre"));
    let offer = offers(&fx)[0];
    assert_eq!(offer.agent.as_str(), "ord");
    assert_eq!(offer.trace.rule, Some(Rule::TransferTarget));
    assert_eq!(offer.note.as_ref().unwrap().summary, "wants to change the address");
    assert_eq!(offer.note.as_ref().unwrap().author, "pre");
    let view = b.router.inquiry(b.now, "q1").unwrap();
    let kinds: Vec<_> = view.timeline.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [EventKind::Offered, EventKind::Accepted, EventKind::Transferred, EventKind::Offered]);
    assert_eq!(b.router.agent("pre").unwrap().load, 0);
}

#[test]
fn escalation_goes_to_supervisors_with_raised_priority() {
    let mut b = bench();
    b.agent(presence("c", &[("complaints", 3)], 5));
    b.agent(presence("boss", &[("supervisors", 5)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.now += 300_000; // five minutes waiting: ORDER 40 aged to 70
    let lead = Actor { id: "c".into(), role: Role::Lead };
    let denied = b.try_apply(escalate(lead, HandoffNote::default()));
    assert!(matches!(denied, Err(CoreError::PermissionDenied(_))), "a lead outside orders");
    let fx = b.apply(escalate(admin(), HandoffNote::default()));
    let offer = offers(&fx)[0];
    assert_eq!((offer.agent.as_ref(), offer.group.as_str()), ("boss", "supervisors"));
    assert_eq!(offer.trace.rule, Some(Rule::Escalation));
    assert_eq!((offer.trace.score, offer.trace.band), (80, Some(Band::High)), "+10 on top of the aging it earned");
    // GetInquiry tells each step's score as its event did.
    let event_scores: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Event(ev) => Some((ev.kind, ev.score)),
            _ => None,
        })
        .collect();
    let view = b.router.inquiry(b.now, "q1").unwrap();
    let step_scores: Vec<_> = view.timeline.iter().map(|t| (t.kind, t.score)).collect();
    assert_eq!(event_scores, [(EventKind::Escalated, 80)]);
    assert_eq!(step_scores, [(EventKind::Queued, 40), (EventKind::Escalated, 80), (EventKind::Offered, 80)]);
}

#[test]
fn every_handoff_keeps_the_aging_earned_before_it() {
    let mut b = bench();
    supervisor_on_break(&mut b);
    b.arrive(inquiry("q1", Category::Order));
    let transfer = |group: &str| to_group(admin(), group, HandoffNote::default());
    let score = |b: &Bench| b.router.inquiry(b.now, "q1").unwrap().score;
    b.now += 300_000; // ORDER 40 aged to 70
    b.apply(transfer("complaints"));
    assert_eq!(score(&b), 70);
    b.now += 10_000;
    b.apply(transfer("orders"));
    assert_eq!(score(&b), 71, "the second handoff keeps what the first carried over");
    b.now += 10_000;
    b.apply(escalate(admin(), HandoffNote::default()));
    assert_eq!(score(&b), 82, "and an escalation adds its 10");
}

#[test]
fn a_lead_handing_off_an_agents_active_chat_withdraws_it_from_that_agent() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.agent(presence("boss", &[("supervisors", 5)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.accept("a", "q1");
    let fx = b.apply(escalate(admin(), HandoffNote::default()));
    let withdrawn: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Withdraw { inquiry, agent, .. } => Some((inquiry.to_string(), agent.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn, [("q1".to_string(), "a".to_string())]);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "boss".to_string())]);
}

#[test]
fn an_oversized_handoff_note_is_refused_and_changes_nothing() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.accept("a", "q1");
    let note = HandoffNote { attempted: "x".repeat(600_000), ..HandoffNote::default() };
    let transfer = to_group(Actor::agent("a"), "supervisors", note);
    let refused = b.try_apply(transfer);
    assert!(matches!(&refused, Err(CoreError::InvalidArgument(m)) if m.contains("note.attempted")), "{refused:?}");
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Active));
    let note = HandoffNote { summary: "beep\u{7}".into(), ..HandoffNote::default() };
    let escalated = b.try_apply(escalate(admin(), note));
    assert!(matches!(escalated, Err(CoreError::InvalidArgument(m)) if m.contains("control characters")));
}

#[test]
fn an_inquiry_is_handed_off_at_most_twenty_times() {
    let mut b = bench();
    supervisor_on_break(&mut b);
    b.arrive(inquiry("q1", Category::Order));
    let note = HandoffNote { summary: "line one\nline two\tend".into(), ..HandoffNote::default() };
    let transfer = |group: &str| to_group(admin(), group, note.clone());
    for i in 0..20 {
        b.apply(transfer(if i % 2 == 0 { "complaints" } else { "orders" }));
    }
    let refused = b.try_apply(transfer("complaints"));
    assert!(matches!(&refused, Err(CoreError::FailedPrecondition(m)) if m.contains("20 times")), "{refused:?}");
    // A complaint passed around that often still reaches a supervisor, once.
    b.apply(escalate(admin(), note.clone()));
    assert!(matches!(b.try_apply(escalate(admin(), note.clone())), Err(CoreError::FailedPrecondition(_))));
}

#[test]
fn only_the_first_acceptance_reports_the_customers_wait() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    b.agent(presence("ord", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::PreSales));
    b.now += 20_000;
    let waited = |fx: &[Effect]| {
        fx.iter()
            .find_map(|e| match e {
                Effect::Event(ev) if ev.kind == EventKind::Accepted => Some(ev.waited_ms),
                _ => None,
            })
            .expect("an ACCEPTED event")
    };
    assert_eq!(waited(&b.accept("pre", "q1")), Some(20_000));
    b.now += 600_000;
    b.apply(to_group(Actor::agent("pre"), "orders", HandoffNote::default()));
    assert_eq!(waited(&b.accept("ord", "q1")), None, "a handed-off chat is not a second wait");
}

#[test]
fn an_agent_outside_the_group_who_does_not_take_a_transfer_leaves_it_where_it_waited() {
    let mut b = bench();
    b.agent(presence("ord", &[("orders", 3)], 1));
    b.agent(presence("s1", &[("fans", 3), ("after_sales", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.accept("ord", "q1");
    let note = HandoffNote { summary: "needs a specialist".into(), ..HandoffNote::default() };
    let target = TransferTarget::Agent("s1".into());
    let fx = b.apply(Command::Transfer { actor: Actor::agent("ord"), inquiry: "q1".into(), target, note });
    let transferred = fx.iter().find_map(|e| match e {
        Effect::Event(ev) if ev.kind == EventKind::Transferred => Some(ev),
        _ => None,
    });
    let transferred = transferred.expect("TRANSFERRED");
    assert_eq!((transferred.from_group.as_deref(), transferred.group.as_str()), (Some("orders"), "fans"));
    assert_eq!(offers(&fx)[0].group.as_str(), "fans", "offered under a group of the agent's");
    let fx = b.apply(Command::Decline { actor: Actor::agent("s1"), inquiry: "q1".into(), reason: None });
    // `ord` handed it on: avoided, like the agent who declined, for one accept timeout.
    assert!(offers(&fx).is_empty(), "not straight back to the agent who handed it on");
    assert_eq!(b.router.inquiry(b.now, "q1").unwrap().group.as_str(), "orders", "back in orders, not in fans");
    let fx = b.advance(30_000);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "ord".to_string())], "then to whoever may take it");
}

#[test]
fn a_declined_transfer_does_not_come_back_to_the_agent_who_handed_it_on() {
    let mut b = bench();
    // The most proficient: without being avoided it would come first.
    b.agent(presence("ta1", &[("pre_sales", 5)], 5));
    b.agent(presence("tc1", &[("pre_sales", 3)], 5));
    b.agent(presence("tb1", &[("pre_sales", 3)], 5));
    let mut q = inquiry("q1", Category::PreSales);
    q.customer.id = "alice".into();
    assert_eq!(offer_pairs(&b.arrive(q)), [("q1".to_string(), "ta1".to_string())]);
    b.accept("ta1", "q1");
    let target = TransferTarget::Agent("tb1".into());
    let note = HandoffNote { summary: "vip question".into(), ..HandoffNote::default() };
    b.apply(Command::Transfer { actor: Actor::agent("ta1"), inquiry: "q1".into(), target, note });
    let fx = b.apply(Command::Decline { actor: Actor::agent("tb1"), inquiry: "q1".into(), reason: None });
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "tc1".to_string())]);
}

#[test]
fn the_agent_who_handed_an_inquiry_on_is_not_its_sticky_agent() {
    let mut b = bench();
    b.agent(presence("ta1", &[("pre_sales", 3)], 5));
    let mut q = inquiry("q1", Category::PreSales);
    q.customer.id = "alice".into();
    b.arrive(q);
    b.accept("ta1", "q1");
    b.agent(presence("tb1", &[("pre_sales", 5)], 5));
    let target = TransferTarget::Agent("tb1".into());
    b.apply(Command::Transfer {
        actor: Actor::agent("ta1"),
        inquiry: "q1".into(),
        target,
        note: HandoffNote::default(),
    });
    let fx = b.apply(Command::Decline { actor: Actor::agent("tb1"), inquiry: "q1".into(), reason: None });
    assert!(offers(&fx).is_empty(), "both avoided for one accept timeout");
    // Then both may have it: by proficiency, not back to ta1 as alice's previous agent.
    let fx = b.advance(30_000);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "tb1".to_string())]);
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::BestProficiency));
}

#[test]
fn the_note_of_an_offline_return_keeps_what_a_persons_handoff_note_said() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 3));
    b.arrive(inquiry("q1", Category::PreSales));
    b.accept("pre", "q1");
    let note = HandoffNote { summary: "address change".into(), ..HandoffNote::default() };
    b.agent(presence("ord1", &[("orders", 3)], 3));
    b.apply(to_group(Actor::agent("pre"), "orders", note));
    b.accept("ord1", "q1");
    b.agent(presence("ord2", &[("orders", 3)], 3));
    let mut offline = presence("ord1", &[("orders", 3)], 3);
    offline.status = crate::core::types::AgentStatus::Offline;
    let fx = b.agent(offline);
    let offer = offers(&fx).into_iter().find(|o| o.inquiry.as_str() == "q1").expect("offered to ord2");
    assert_eq!(offer.agent.as_str(), "ord2");
    let summary = &offer.note.as_ref().expect("a note").summary;
    assert!(summary.contains("went offline") && summary.contains("address change"), "{summary}");
}

#[test]
fn later_handoffs_keep_what_earlier_notes_said_for_the_next_agent() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 3));
    b.agent(presence("ord", &[("orders", 3)], 3));
    b.agent(presence("ref", &[("after_sales", 3)], 3));
    b.agent(presence("boss", &[("supervisors", 5)], 3));
    b.arrive(inquiry("q1", Category::PreSales));
    b.accept("pre", "q1");
    let first = HandoffNote {
        summary: "address change to Beijing".into(),
        attempted: "OMS locked the order".into(),
        customer_expectation: "before shipping today".into(),
        ..HandoffNote::default()
    };
    b.apply(to_group(Actor::agent("pre"), "orders", first));
    b.accept("ord", "q1");
    let second = HandoffNote { summary: "needs a refund of the shipping fee".into(), ..HandoffNote::default() };
    let fx = b.apply(to_group(Actor::agent("ord"), "after_sales", second));
    let note = offers(&fx)[0].note.clone().expect("a note");
    assert_eq!(note.author, "ord");
    assert_eq!(note.summary, "needs a refund of the shipping fee; earlier note by pre: address change to Beijing");
    assert_eq!(note.attempted, "earlier: OMS locked the order", "what an earlier note said is marked so");
    assert_eq!(note.customer_expectation, "earlier: before shipping today");
    b.accept("ref", "q1");
    // An escalation without a note hands on the whole note as it stood.
    let fx = b.apply(escalate(Actor::agent("ref"), HandoffNote::default()));
    let offer = offers(&fx)[0];
    assert_eq!(offer.agent.as_str(), "boss");
    assert_eq!(offer.note.as_ref(), Some(&note));
    // The timeline keeps each note as its author wrote it.
    let view = b.router.inquiry(b.now, "q1").unwrap();
    let written: Vec<_> = view.timeline.iter().filter_map(|t| t.note.as_ref().map(|n| n.summary.as_str())).collect();
    assert_eq!(written, ["address change to Beijing", "needs a refund of the shipping fee", ""]);
}

#[test]
fn a_finished_inquiry_shows_the_group_that_served_it_last() {
    let mut b = bench();
    b.agent(presence("ord", &[("orders", 3)], 1));
    b.agent(presence("s1", &[("fans", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.accept("ord", "q1");
    let note = HandoffNote { summary: "needs a specialist".into(), ..HandoffNote::default() };
    let target = TransferTarget::Agent("s1".into());
    b.apply(Command::Transfer { actor: Actor::agent("ord"), inquiry: "q1".into(), target, note });
    b.accept("s1", "q1");
    assert_eq!(b.router.inquiry(b.now, "q1").unwrap().group.as_str(), "fans");
    b.complete("s1", "q1");
    let view = b.router.inquiry(b.now, "q1").unwrap();
    assert_eq!((view.state, view.group.as_str()), (InquiryState::Completed, "fans"), "as its COMPLETED step says");
}

/// A supervisor on duty, on a break: escalations may go to the supervisors
/// (and wait there), none is offered at once.
fn supervisor_on_break(b: &mut Bench) {
    let mut boss = presence("boss", &[("supervisors", 5)], 5);
    boss.status = AgentStatus::Break;
    b.agent(boss);
}

#[test]
fn an_escalation_no_supervisor_on_duty_could_take_is_refused_and_the_chat_stays() {
    let mut b = bench();
    b.agent(presence("c1", &[("complaints", 3)], 5));
    b.arrive(inquiry("q1", Category::Complaint));
    b.accept("c1", "q1");
    let mut gone = presence("boss", &[("supervisors", 5)], 5);
    gone.status = AgentStatus::Offline;
    b.agent(gone);
    let refused = b.try_apply(escalate(Actor::agent("c1"), HandoffNote::default()));
    assert!(
        matches!(&refused, Err(CoreError::FailedPrecondition(m)) if m.contains("call a supervisor in")),
        "{refused:?}"
    );
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Active), "still with c1");
    supervisor_on_break(&mut b);
    b.apply(escalate(Actor::agent("c1"), HandoffNote::default()));
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Waiting), "waits for the supervisor back from break");
}

#[test]
fn a_note_carried_through_many_handoffs_is_marked_earlier_once() {
    use super::handoff::carried_note;
    let first = HandoffNote { summary: "s1".into(), attempted: "checked photos".into(), ..HandoffNote::default() };
    let mut note = first;
    for i in 2..5 {
        let next = HandoffNote { summary: format!("s{i}"), author: format!("a{i}"), ..HandoffNote::default() };
        note = carried_note(next, Some(&note));
    }
    assert_eq!(note.attempted, "earlier: checked photos");
    assert!(note.summary.starts_with("s4; earlier note by a3: s3; earlier note by a2: s2"), "{}", note.summary);
}

#[test]
fn an_escalating_supervisor_is_not_the_one_on_duty_to_take_it() {
    let mut b = bench();
    b.agent(presence("boss", &[("complaints", 3), ("supervisors", 5)], 5));
    b.arrive(inquiry("q1", Category::Complaint));
    b.accept("boss", "q1");
    let refused = b.try_apply(escalate(Actor::agent("boss"), HandoffNote::default()));
    assert!(
        matches!(&refused, Err(CoreError::FailedPrecondition(m)) if m.contains("call a supervisor in")),
        "{refused:?}"
    );
}
