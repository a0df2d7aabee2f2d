//! The dedicated fan/VIP group: who lands there, and what becomes of work
//! that waits there.

use super::tests::{bench, events};
use crate::core::effect::EventKind;
use crate::core::settings::RoutingSettings;
use crate::core::testkit::{inquiry, offer_pairs, offers, presence, Bench};
use crate::core::types::{Band, Category, Rule};

#[test]
fn a_fan_goes_to_the_fans_group_when_it_has_a_free_agent_or_a_short_queue_else_to_the_primary_group() {
    let mut b = bench();
    b.agent(presence("fan-desk", &[("fans", 3)], 1));
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    let mut fan = inquiry("fan1", Category::PreSales);
    fan.customer.is_fan = true;
    let fx = b.arrive(fan.clone());
    assert_eq!(offers(&fx)[0].agent.as_str(), "fan-desk");
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::Dedicated));
    // fan-desk is full now; the fans queue is short, so the next fan waits there
    // until the queue reaches `short_queue` (5), then goes to pre-sales.
    for i in 2..=6 {
        fan.id = format!("fan{i}").into();
        assert!(offers(&b.arrive(fan.clone())).is_empty());
    }
    fan.id = "fan7".into();
    let fx = b.arrive(fan.clone());
    assert_eq!(offer_pairs(&fx), [("fan7".to_string(), "pre".to_string())]);
}

#[test]
fn a_fan_waiting_in_the_fans_group_moves_to_its_primary_group_after_overflow_after() {
    let mut b = bench();
    b.agent(presence("fan-desk", &[("fans", 3)], 1));
    b.agent(presence("refunds", &[("after_sales", 3)], 5));
    let mut fan = inquiry("fan1", Category::AfterSalesRefund);
    fan.customer.is_fan = true;
    assert_eq!(offers(&b.arrive(fan.clone()))[0].agent.as_str(), "fan-desk");
    b.accept("fan-desk", "fan1");
    fan.id = "fan2".into();
    assert!(offers(&b.arrive(fan)).is_empty(), "the fans queue is short and fan-desk is available");
    // Not to pre-sales, where the fans group overflows: to after-sales, whose work it is.
    let fx = b.advance(60_000);
    assert_eq!(offer_pairs(&fx), [("fan2".to_string(), "refunds".to_string())]);
    assert_eq!(offers(&fx)[0].trace.rule, Some(Rule::Overflow));
    let steps: Vec<(EventKind, String)> =
        b.router.inquiry(b.now, "fan2").unwrap().timeline.iter().map(|t| (t.kind, t.group.to_string())).collect();
    assert_eq!(steps, [(EventKind::Queued, "fans".to_string()), (EventKind::Offered, "after_sales".to_string())]);
}

#[test]
fn a_fan_moves_to_its_primary_group_even_when_the_fans_group_overflows_nowhere() {
    let mut settings = RoutingSettings::default();
    settings.groups.iter_mut().find(|g| g.id == "fans").unwrap().overflow.clear();
    let mut b = Bench::new(settings);
    b.agent(presence("fan-desk", &[("fans", 3)], 1));
    let mut fan = inquiry("fan1", Category::AfterSalesRefund);
    fan.customer.is_fan = true;
    b.arrive(fan.clone());
    b.accept("fan-desk", "fan1");
    fan.id = "fan2".into();
    b.arrive(fan);
    // No one in after-sales yet: it waits there, REQUEUED, and is offered when someone comes.
    let fx = b.advance(60_000);
    assert!(events(&fx).contains(&EventKind::Requeued));
    assert_eq!(b.router.inquiry(b.now, "fan2").unwrap().group.as_str(), "after_sales");
    let fx = b.agent(presence("refunds", &[("after_sales", 3)], 5));
    assert_eq!(offer_pairs(&fx), [("fan2".to_string(), "refunds".to_string())]);
}

#[test]
fn a_vip3_is_dedicated_and_high_even_for_pre_sales() {
    let mut b = bench();
    b.agent(presence("fan-desk", &[("fans", 3)], 2));
    let mut vip = inquiry("vip", Category::PreSales);
    vip.customer.vip_tier = 3;
    let fx = b.arrive(vip);
    assert_eq!(offers(&fx)[0].trace.band, Some(Band::High));
    assert_eq!(offers(&fx)[0].group.as_str(), "fans");
}

#[test]
fn an_empty_dedicated_group_is_skipped() {
    let mut b = bench();
    b.agent(presence("pre", &[("pre_sales", 3)], 5));
    let mut fan = inquiry("fan", Category::PreSales);
    fan.customer.is_fan = true;
    assert_eq!(offers(&b.arrive(fan))[0].agent.as_str(), "pre");
}

#[test]
fn a_vip_waits_for_the_fans_group_only_if_someone_there_could_serve_them() {
    let mut b = bench();
    b.agent(presence("fan-desk", &[("fans", 3)], 2)); // Chinese only
    let mut english = presence("en-orders", &[("orders", 3)], 2);
    english.languages = vec!["en".into()];
    b.agent(english);
    let mut vip = inquiry("vip1", Category::Order);
    vip.customer.vip_tier = 3;
    vip.language = "en-US".into();
    let fx = b.arrive(vip);
    assert_eq!(offer_pairs(&fx), [("vip1".to_string(), "en-orders".to_string())], "at once, not after overflow");
}
