//! One test per routing rule, with the domain's default numbers.

use crate::core::command::{Actor, Command, Role};
use crate::core::effect::{Effect, EventKind};
use crate::core::error::CoreError;
use crate::core::settings::{GroupSettings, RoutingSettings};
use crate::core::testkit::{inquiry, offer_pairs, offers, presence, Bench};
use crate::core::types::{Band, Category, InquiryState, Level, Rule};

pub(super) fn bench() -> Bench {
    Bench::new(RoutingSettings::default())
}

pub(super) fn admin() -> Actor {
    Actor { id: "ops".into(), role: Role::Admin }
}

pub(super) fn pin(b: &mut Bench, group: Option<&str>, level: Level) -> Vec<Effect> {
    let (from, until) = (b.now, b.now + 3_600_000);
    b.apply(Command::SetLevelOverride { actor: admin(), group: group.map(String::from), level, from, until })
}

pub(super) fn events(fx: &[Effect]) -> Vec<EventKind> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event(ev) => Some(ev.kind),
            Effect::Offer(_) => Some(EventKind::Offered),
            Effect::Deflect { .. } => Some(EventKind::Deflected),
            _ => None,
        })
        .collect()
}

#[test]
fn an_inquiry_goes_to_an_available_agent_of_its_primary_group() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 5)], 5));
    b.agent(presence("after", &[("after_sales", 3)], 5));
    let fx = b.arrive(inquiry("q1", Category::AfterSalesRefund));
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "after".to_string())]);
    let offer = offers(&fx)[0];
    assert_eq!(offer.trace.band, Some(Band::High));
    assert_eq!(offer.trace.score, 80);
    assert_eq!(offer.expires_at, b.now + 30_000);
}

#[test]
fn with_no_agent_it_waits_and_a_refund_outranks_an_exchange_outranks_a_repair() {
    let mut b = bench();
    for (id, category) in [
        ("repair", Category::AfterSalesRepair),
        ("exchange", Category::AfterSalesExchange),
        ("refund", Category::AfterSalesRefund),
    ] {
        assert_eq!(events(&b.arrive(inquiry(id, category))), [EventKind::Queued]);
    }
    let fx = b.agent(presence("a", &[("after_sales", 3)], 1));
    assert_eq!(offer_pairs(&fx), [("refund".to_string(), "a".to_string())]);
    b.accept("a", "refund");
    let fx = b.complete("a", "refund");
    assert_eq!(offer_pairs(&fx), [("exchange".to_string(), "a".to_string())]);
}

#[test]
fn agent_choice_prefers_proficiency_then_occupancy_then_idle_time_then_id() {
    let mut b = bench();
    b.agent(presence("b-novice", &[("orders", 2)], 5));
    b.agent(presence("a-expert", &[("orders", 5)], 2));
    let fx = b.arrive(inquiry("q1", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "a-expert");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::BestProficiency));
    // a-expert has 1 of 2 slots in use (50 %), c-expert none: least occupied wins.
    b.agent(presence("c-expert", &[("orders", 5)], 4));
    let fx = b.arrive(inquiry("q2", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "c-expert");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::LeastOccupied));
    // a: 1/2 = 50 %, c: 1/4 = 25 % -> c again; then a 50 %, c 50 %: c was offered last,
    // so a has been idle longer.
    let fx = b.arrive(inquiry("q3", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "c-expert");
    b.now += 1;
    let fx = b.arrive(inquiry("q4", Category::Order));
    assert_eq!(offers(&fx)[0].agent.as_str(), "a-expert");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::LongestIdle));
}

#[test]
fn the_customers_previous_agent_is_preferred_within_the_sticky_window() {
    let mut b = bench();
    b.agent(presence("expert", &[("orders", 5)], 5));
    b.agent(presence("regular", &[("orders", 3)], 5));
    b.apply(Command::SetPresence { actor: Actor::agent("expert"), presence: presence("expert", &[("orders", 5)], 5) });
    let mut first = inquiry("q1", Category::Order);
    first.customer.id = "alice".into();
    let fx = b.arrive(first);
    assert_eq!(offers(&fx)[0].agent.as_str(), "expert");
    b.apply(Command::Decline { actor: Actor::agent("expert"), inquiry: "q1".into(), reason: None });
    b.accept("regular", "q1");
    b.complete("regular", "q1");
    let mut again = inquiry("q2", Category::Order);
    again.customer.id = "alice".into();
    let fx = b.arrive(again);
    assert_eq!(offers(&fx)[0].agent.as_str(), "regular");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::Sticky));
}

#[test]
fn customers_without_an_id_are_not_stuck_to_the_last_anonymous_customers_agent() {
    let mut b = bench();
    b.agent(presence("expert", &[("orders", 5)], 5));
    b.agent(presence("regular", &[("orders", 3)], 5));
    let mut first = inquiry("q1", Category::Order);
    first.customer.id = "".into();
    b.arrive(first);
    b.apply(Command::Decline { actor: Actor::agent("expert"), inquiry: "q1".into(), reason: None });
    b.accept("regular", "q1");
    b.complete("regular", "q1");
    let mut other = inquiry("q2", Category::Order);
    other.customer.id = "".into();
    let fx = b.arrive(other);
    assert_eq!(offers(&fx)[0].agent.as_str(), "expert", "best proficiency, not STICKY");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::BestProficiency));
}

#[test]
fn language_and_skills_filter_agents() {
    let mut b = bench();
    let mut english = presence("en-agent", &[("orders", 3)], 5);
    english.languages = vec!["en".into()];
    english.skills = vec!["invoice".into()];
    b.agent(english);
    b.agent(presence("zh-agent", &[("orders", 5)], 5));
    let mut q = inquiry("q1", Category::Order);
    q.language = "en-US".into();
    assert_eq!(offers(&b.arrive(q))[0].agent.as_str(), "en-agent");
    let mut q = inquiry("q2", Category::Order);
    q.required_skills = vec!["invoice".into()];
    let fx = b.arrive(q);
    assert!(offers(&fx).is_empty(), "no zh agent has the skill");
    assert_eq!(b.router.inquiry_state("q2"), Some(InquiryState::Waiting));
}

/// One group serving every category, so reserve arithmetic is easy to follow.
pub(super) fn single_group_settings() -> RoutingSettings {
    RoutingSettings {
        groups: vec![GroupSettings {
            id: "all".into(),
            categories: Category::ALL.to_vec(),
            ..GroupSettings::default()
        }],
        dedicated: crate::core::settings::DedicatedSettings { group: String::new(), ..Default::default() },
        escalation: crate::core::settings::EscalationSettings { group: "all".into() },
        ..RoutingSettings::default()
    }
}

#[test]
fn at_surge_low_work_cannot_eat_the_30_percent_reserve_but_a_complaint_can() {
    let mut b = Bench::new(single_group_settings());
    b.agent(presence("a", &[("all", 3)], 3));
    b.agent(presence("b", &[("all", 3)], 3));
    pin(&mut b, None, Level::Surge);
    // SURGE: 3 + 2 extra chats each = 10 slots, reserve floor(0.3 x 10) = 3.
    let view = &b.router.groups(b.now)[0];
    assert_eq!((view.capacity, view.reserved_slots), (10, 3));
    for i in 0..7 {
        let mut order = inquiry(&format!("o{i}"), Category::Order);
        order.customer.vip_tier = 1;
        assert_eq!(offers(&b.arrive(order)).len(), 1, "NORMAL fits while 4+ slots are free");
    }
    // 3 free: a LOW (bot already tried) would leave 2 < 3.
    let mut low = inquiry("low", Category::PreSales);
    low.bot_attempted = true;
    let fx = b.arrive(low);
    assert!(offers(&fx).is_empty());
    assert_eq!(events(&fx), [EventKind::Queued]);
    let fx = b.arrive(inquiry("complaint", Category::Complaint));
    assert_eq!(offers(&fx).len(), 1, "HIGH may take any slot");
}

#[test]
fn an_agent_above_its_cap_hides_no_one_elses_free_slots() {
    let mut b = Bench::new(single_group_settings());
    for agent in ["a", "b"] {
        b.agent(presence(agent, &[("all", 3)], 5));
    }
    for i in 0..10 {
        b.arrive(inquiry(&format!("o{i}"), Category::Order));
    }
    // Both lower their cap to 2 and keep their 5 chats; a newcomer has 5 free.
    for agent in ["a", "b"] {
        b.agent(presence(agent, &[("all", 3)], 2));
    }
    b.agent(presence("e", &[("all", 3)], 5));
    let view = &b.router.groups(b.now)[0];
    assert_eq!((view.capacity, view.free_slots, view.reserved_slots), (9, 5, 0));
    let fx = b.arrive(inquiry("next", Category::Order));
    assert_eq!(offer_pairs(&fx), [("next".to_string(), "e".to_string())]);
}

#[test]
fn a_one_agent_one_slot_group_reserves_nothing() {
    let mut b = Bench::new(single_group_settings());
    b.agent(presence("solo", &[("all", 3)], 1));
    let mut low = inquiry("low", Category::Other);
    low.bot_attempted = true;
    assert_eq!(offers(&b.arrive(low)).len(), 1);
}

#[test]
fn at_surge_low_pre_sales_go_to_the_bot_unless_the_bot_already_tried() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    pin(&mut b, Some("pre_sales"), Level::Surge);
    let fx = b.arrive(inquiry("q1", Category::PreSales));
    assert!(matches!(fx.as_slice(), [Effect::Deflect { score: 20, .. }]), "PRE_SALES 20: {fx:?}");
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Deflected));
    assert_eq!(b.router.inquiry(b.now, "q1").unwrap().timeline[0].score, 20, "the step says as much");
    let steps = |b: &Bench| b.router.inquiry(b.now, "q1").unwrap().timeline.iter().map(|t| t.kind).collect::<Vec<_>>();
    assert_eq!(steps(&b), [EventKind::Deflected], "GetInquiry shows the deflection");
    let mut vip = inquiry("q3", Category::PreSales);
    vip.customer.vip_tier = 1;
    assert_eq!(offers(&b.arrive(vip)).len(), 1, "a VIP is never LOW");
    // Sent again without the bot's mark it is a duplicate; the bot's hand-back
    // under the same id is routed, with its timeline kept.
    let again = Command::Arrive(Box::new(inquiry("q1", Category::PreSales)));
    assert!(matches!(b.try_apply(again), Err(CoreError::Duplicate(_))));
    b.now += 20_000;
    let mut back = inquiry("q1", Category::PreSales);
    back.bot_attempted = true;
    // Another shop cannot take the customer over by publishing the same id.
    let mut other_shop = back.clone();
    other_shop.shop_id = "shop-2".into();
    let takeover = Command::Arrive(Box::new(other_shop));
    assert!(matches!(b.try_apply(takeover), Err(CoreError::Duplicate(_))));
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Deflected));
    assert_eq!(offer_pairs(&b.arrive(back.clone())), [("q1".to_string(), "pre".to_string())]);
    assert_eq!(steps(&b), [EventKind::Deflected, EventKind::Offered]);
    let twice = Command::Arrive(Box::new(back));
    assert!(matches!(b.try_apply(twice), Err(CoreError::Duplicate(_))), "only a deflected inquiry comes back");
    // Forgetting the deflection after `retain_finished` leaves the live inquiry alone.
    b.accept("pre", "q1");
    b.advance(b.router.settings().agents.retain_finished.as_millis() as u64);
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Active));
    b.complete("pre", "q1");
    b.advance(b.router.settings().agents.retain_finished.as_millis() as u64 + 1_000);
    assert_eq!(b.router.inquiry_state("q1"), None, "forgotten once finished again");
}

#[test]
fn an_inquiry_finished_twice_in_one_millisecond_is_forgotten_once() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    pin(&mut b, Some("pre_sales"), Level::Surge);
    assert!(matches!(b.arrive(inquiry("q1", Category::PreSales)).as_slice(), [Effect::Deflect { .. }]));
    let mut back = inquiry("q1", Category::PreSales);
    back.bot_attempted = true;
    assert_eq!(offers(&b.arrive(back)).len(), 1, "handed back at once");
    b.accept("pre", "q1");
    b.complete("pre", "q1");
    b.advance(b.router.settings().agents.retain_finished.as_millis() as u64 + 1_000);
    assert_eq!(b.router.inquiry_state("q1"), None);
    // Its slot was freed once: two new inquiries do not share it.
    let mut late = |id: &str| {
        let mut q = inquiry(id, Category::PreSales);
        q.bot_attempted = true;
        b.arrive(q);
    };
    late("q2");
    late("q3");
    // (The bench checks every invariant after each command, the index too.)
    assert_eq!(b.router.inquiry_state("q2"), Some(InquiryState::Waiting));
    assert_eq!(b.router.inquiry_state("q3"), Some(InquiryState::Waiting));
}

#[test]
fn after_overflow_after_a_waiting_inquiry_is_offered_to_an_overflow_groups_agent() {
    let mut b = bench();
    b.agent(presence("orders-agent", &[("orders", 3)], 5));
    assert!(offers(&b.arrive(inquiry("q1", Category::PreSales))).is_empty());
    assert!(offers(&b.advance(59_000)).is_empty(), "NORMAL overflow_after is 60 s");
    let fx = b.advance(1_000);
    assert_eq!(offer_pairs(&fx), [("q1".to_string(), "orders-agent".to_string())]);
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::Overflow));
    let fx = b.accept("orders-agent", "q1");
    let accepted = fx.iter().find_map(|e| match e {
        Effect::Event(ev) if ev.kind == EventKind::Accepted => Some(ev),
        _ => None,
    });
    let accepted = accepted.expect("ACCEPTED");
    assert_eq!(accepted.group.as_str(), "orders", "taken by the overflow group");
    assert_eq!(accepted.waited_in.as_deref(), Some("pre_sales"), "it waited in pre-sales");
}

#[test]
fn an_overflowed_inquiry_takes_a_slot_freed_in_the_overflow_group() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 1));
    b.arrive(inquiry("order", Category::Order));
    b.accept("o", "order");
    b.arrive(inquiry("pre", Category::PreSales));
    b.advance(61_000);
    let fx = b.complete("o", "order");
    assert_eq!(offer_pairs(&fx), [("pre".to_string(), "o".to_string())]);
}

#[test]
fn an_offered_customer_still_counts_in_the_oldest_wait() {
    let mut b = bench();
    b.arrive(inquiry("q1", Category::Order));
    b.now += 190_000;
    assert_eq!(offers(&b.agent(presence("a", &[("orders", 3)], 5))).len(), 1);
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!(orders.oldest_wait_ms, 190_000, "offered, not yet answered");
    b.accept("a", "q1");
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!(orders.oldest_wait_ms, 0);
}

#[test]
fn cancellation_removes_waiting_and_frees_held_work() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 1));
    b.arrive(inquiry("held", Category::Order));
    b.arrive(inquiry("waiting", Category::Order));
    b.apply(Command::Cancel { inquiry: "waiting".into(), shop: None });
    assert_eq!(b.router.inquiry_state("waiting"), Some(InquiryState::Cancelled));
    b.arrive(inquiry("next", Category::Order));
    let fx = b.apply(Command::Cancel { inquiry: "held".into(), shop: None });
    assert_eq!(offer_pairs(&fx), [("next".to_string(), "a".to_string())]);
    let again = b.try_apply(Command::Cancel { inquiry: "held".into(), shop: None });
    assert!(matches!(again, Err(CoreError::AlreadyFinished(..))));
    let unknown = b.try_apply(Command::Cancel { inquiry: "nope".into(), shop: None });
    assert!(matches!(unknown, Err(CoreError::UnknownInquiry(_))));
}

#[test]
fn only_the_inquirys_own_shop_cancels_it() {
    let mut b = bench();
    let q = inquiry("q", Category::Order);
    let (own, other) = (q.shop_id.clone(), "another-shop");
    b.arrive(q);
    let foreign = b.try_apply(Command::Cancel { inquiry: "q".into(), shop: Some(other.into()) });
    assert!(matches!(foreign, Err(CoreError::UnknownInquiry(_))));
    assert_eq!(b.router.inquiry_state("q"), Some(InquiryState::Waiting));
    b.apply(Command::Cancel { inquiry: "q".into(), shop: Some(own) });
    assert_eq!(b.router.inquiry_state("q"), Some(InquiryState::Cancelled));
}

#[test]
fn a_customer_who_left_while_with_the_bot_is_not_handed_back() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    pin(&mut b, Some("pre_sales"), Level::Surge);
    b.arrive(inquiry("q", Category::PreSales));
    assert_eq!(b.router.inquiry_state("q"), Some(InquiryState::Deflected));
    let fx = b.apply(Command::Cancel { inquiry: "q".into(), shop: None });
    assert_eq!(events(&fx), [EventKind::Cancelled]);
    assert_eq!(b.router.inquiry_state("q"), Some(InquiryState::Cancelled));
    let mut back = inquiry("q", Category::PreSales);
    back.bot_attempted = true;
    assert!(matches!(b.try_apply(Command::Arrive(Box::new(back))), Err(CoreError::Duplicate(_))));
}

#[test]
fn duplicates_are_refused_and_change_nothing() {
    let mut b = bench();
    b.arrive(inquiry("q1", Category::Order));
    assert!(matches!(
        b.try_apply(Command::Arrive(Box::new(inquiry("q1", Category::Order)))),
        Err(CoreError::Duplicate(_))
    ));
    assert_eq!(b.router.state_counts().waiting, 1);
}

#[test]
fn only_the_offered_agent_may_accept_and_only_offers_can_be_accepted() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.agent(presence("b", &[("orders", 1)], 5));
    b.arrive(inquiry("q1", Category::Order));
    let wrong = b.try_apply(Command::Accept { actor: Actor::agent("b"), inquiry: "q1".into() });
    assert!(matches!(wrong, Err(CoreError::PermissionDenied(_))));
    b.accept("a", "q1");
    let twice = b.try_apply(Command::Accept { actor: Actor::agent("a"), inquiry: "q1".into() });
    assert!(matches!(twice, Err(CoreError::FailedPrecondition(_))));
    // Another agent's chat is refused as such, in whatever state it is.
    let theirs = b.try_apply(Command::Accept { actor: Actor::agent("b"), inquiry: "q1".into() });
    assert!(matches!(theirs, Err(CoreError::PermissionDenied(_))), "{theirs:?}");
}

#[test]
fn accepting_an_own_offer_that_ended_says_to_drop_it() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 5));
    b.arrive(inquiry("q1", Category::Order));
    b.advance(30_000); // a's offer times out; nobody else may take it yet
    let late = b.try_apply(Command::Accept { actor: Actor::agent("a"), inquiry: "q1".into() });
    let Err(CoreError::FailedPrecondition(message)) = late else { panic!("{late:?}") };
    assert!(message.contains("ended") && message.contains("waits for an agent again"), "{message}");
    b.agent(presence("b", &[("orders", 1)], 5));
    b.accept("b", "q1");
    let late = b.try_apply(Command::Accept { actor: Actor::agent("a"), inquiry: "q1".into() });
    let Err(CoreError::PermissionDenied(message)) = late else { panic!("{late:?}") };
    assert!(message.contains("held by another agent") && message.contains("remove it from the desktop"), "{message}");
    // An agent it was never offered to learns nothing about it.
    b.agent(presence("c", &[("orders", 1)], 5));
    let snoop = b.try_apply(Command::Complete { actor: Actor::agent("c"), inquiry: "q1".into() });
    assert!(matches!(snoop, Err(CoreError::PermissionDenied(_))), "{snoop:?}");
}

#[test]
fn an_inquiry_received_earlier_waits_and_ages_from_then() {
    let mut b = bench();
    b.arrive(inquiry("now", Category::Order));
    let received_at = b.now - 60_000;
    let early = Box::new(inquiry("early", Category::Order));
    b.apply(Command::ArriveReceived { inquiry: early, received_at });
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!(orders.oldest_wait_ms, 60_000);
    let fx = b.agent(presence("a", &[("orders", 3)], 1));
    assert_eq!(offer_pairs(&fx), [("early".to_string(), "a".to_string())], "it has waited longer");
    b.now += 5_000;
    let fx = b.accept("a", "early");
    assert_eq!(accepted_wait(&fx), Some(65_000));
    b.complete("a", "early");
    b.accept("a", "now");
    b.complete("a", "now");
    // A broker clock ahead of the router's: received counts as now.
    let ahead = Box::new(inquiry("clock-ahead", Category::Order));
    let fx = b.apply(Command::ArriveReceived { inquiry: ahead, received_at: b.now + 10_000 });
    assert_eq!(offer_pairs(&fx), [("clock-ahead".to_string(), "a".to_string())]);
    b.now += 1_000;
    let fx = b.accept("a", "clock-ahead");
    assert_eq!(accepted_wait(&fx), Some(1_000));
}

/// The wait an ACCEPTED event among `fx` reports.
fn accepted_wait(fx: &[Effect]) -> Option<u64> {
    fx.iter().find_map(|e| match e {
        Effect::Event(ev) if ev.kind == EventKind::Accepted => ev.waited_ms,
        _ => None,
    })
}
