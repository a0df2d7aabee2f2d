//! Regressions found by the property tests (`properties/`), each the
//! shrunk case of a bug that was fixed, plus the exclusion-expiry case.

use super::tests::single_group_settings;
use crate::core::command::{Actor, Command, TransferTarget};
use crate::core::settings::RoutingSettings;
use crate::core::testkit::{inquiry, offer_pairs, offers, presence, Bench};
use crate::core::types::{Category, HandoffNote, InquiryState, Rule};

fn bench() -> Bench {
    Bench::new(RoutingSettings::default())
}

#[test]
fn a_returned_overflowed_inquiry_goes_to_a_free_agent_of_an_overflow_group() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 1));
    b.arrive(inquiry("order", Category::Order));
    b.accept("o", "order");
    b.arrive(inquiry("pre", Category::PreSales));
    b.advance(60_000);
    b.agent(presence("p", &[("pre_sales", 3)], 1));
    assert_eq!(b.router.inquiry_state("pre"), Some(InquiryState::Offered));
    b.complete("o", "order");
    let fx = b.apply(Command::Decline { actor: Actor::agent("p"), inquiry: "pre".into(), reason: None });
    assert_eq!(offer_pairs(&fx), [("pre".to_string(), "o".to_string())]);
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::Overflow));
}

#[test]
fn an_agent_handing_off_to_its_own_group_gets_the_best_waiting_work_not_the_same_inquiry() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 1));
    b.arrive(inquiry("mine", Category::Order));
    b.accept("a", "mine");
    let mut vip = inquiry("vip", Category::Logistics);
    vip.customer.vip_tier = 3;
    b.arrive(vip);
    let fx = b.apply(Command::Transfer {
        actor: Actor::agent("a"),
        inquiry: "mine".into(),
        target: TransferTarget::Group("orders".into()),
        note: HandoffNote::default(),
    });
    assert_eq!(offer_pairs(&fx), [("vip".to_string(), "a".to_string())]);
    assert_eq!(b.router.inquiry_state("mine"), Some(InquiryState::Waiting));
}

#[test]
fn when_the_reserve_lets_normal_work_through_again_every_agent_of_the_group_may_take_it() {
    let mut b = Bench::new(single_group_settings());
    b.agent(presence("zh", &[("all", 3)], 10));
    for i in 0..9 {
        assert_eq!(offers(&b.arrive(inquiry(&format!("o{i}"), Category::Order))).len(), 1);
    }
    // 1 free slot of 10 is the reserve: NORMAL work waits.
    assert!(offers(&b.arrive(inquiry("next", Category::Order))).is_empty());
    let mut english = presence("en", &[("all", 3)], 2);
    english.languages = vec!["en".into()];
    // 12 slots, reserve 1, 3 free: `next` may be taken, by the agent who speaks zh.
    let fx = b.agent(english);
    assert_eq!(offer_pairs(&fx), [("next".to_string(), "zh".to_string())]);
}

#[test]
fn an_agent_is_offered_waiting_work_behind_any_number_of_inquiries_it_declined() {
    let mut b = bench();
    b.agent(presence("a", &[("orders", 3)], 1));
    for i in 0..9 {
        b.arrive(inquiry(&format!("d{i}"), Category::Order));
        b.apply(Command::Decline { actor: Actor::agent("a"), inquiry: format!("d{i}").into(), reason: None });
    }
    b.arrive(inquiry("z", Category::Order));
    b.accept("a", "z");
    b.arrive(inquiry("y", Category::Order));
    let fx = b.complete("a", "z");
    assert_eq!(offer_pairs(&fx), [("y".to_string(), "a".to_string())]);
}

#[test]
fn an_inquiry_avoids_the_agent_who_let_it_time_out_for_one_accept_timeout_only() {
    let mut b = bench();
    b.agent(presence("only", &[("after_sales", 3)], 5));
    b.arrive(inquiry("r1", Category::AfterSalesRefund));
    let fx = b.advance(30_000);
    assert!(offers(&fx).is_empty(), "not straight back to the agent who let it time out");
    assert_eq!(b.router.inquiry_state("r1"), Some(InquiryState::Waiting));
    let fx = b.advance(30_000);
    assert_eq!(offer_pairs(&fx), [("r1".to_string(), "only".to_string())], "but not avoided for ever");
}
