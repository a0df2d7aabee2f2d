//! Order and waits where many things happen at once: inquiries crossing
//! `overflow_after` in one tick, slots opened for several agents at once,
//! chats given back mid-conversation, and the best two agents of a group
//! indexed under different offerings.

use super::tests::{bench, pin, single_group_settings};
use crate::core::effect::Effect;
use crate::core::testkit::{inquiry, offer_pairs, presence, Bench};
use crate::core::types::{AgentStatus, Category, Level};

fn pair(inquiry: &str, agent: &str) -> (String, String) {
    (inquiry.to_string(), agent.to_string())
}

#[test]
fn inquiries_overflowing_in_one_tick_take_a_free_slot_best_first_across_groups() {
    let mut b = bench();
    // Pre-sales and after-sales both overflow to orders, which has one slot.
    b.agent(presence("o", &[("orders", 3)], 1));
    b.arrive(inquiry("pre", Category::PreSales));
    b.now += 500;
    b.arrive(inquiry("refund", Category::AfterSalesRefund));
    // One tick after both waited overflow_after (a pause, a catch-up).
    let fx = b.advance(60_000);
    assert_eq!(offer_pairs(&fx), [pair("refund", "o")], "the HIGH refund, not the earlier pre-sales question");
}

#[test]
fn a_chat_given_back_mid_conversation_waits_anew_and_does_not_raise_the_level() {
    let mut b = bench();
    b.agent(presence("a", &[("pre_sales", 3)], 3));
    let mut vip = inquiry("vip", Category::PreSales);
    vip.customer.vip_tier = 1;
    b.arrive(vip);
    let score_at_offer = b.router.inquiry(b.now, "vip").unwrap().score;
    b.advance(25_000);
    b.accept("a", "vip");
    let score_at_accept = b.router.inquiry(b.now, "vip").unwrap().score;
    assert!(score_at_accept > score_at_offer, "aged while offered");
    // Four minutes of conversation, then the agent drops out.
    b.advance(240_000);
    let mut offline = presence("a", &[("pre_sales", 3)], 3);
    offline.status = AgentStatus::Offline;
    b.agent(offline);
    b.advance(1_000);
    let group = b.router.groups(b.now).into_iter().find(|g| g.id == "pre_sales").unwrap();
    assert!(group.oldest_wait_ms <= 1_000, "waiting since the chat came back: {}", group.oldest_wait_ms);
    assert_eq!(group.level, Level::Normal, "one returned chat is no surge");
    // Its priority kept the aging earned before it was accepted, no more.
    assert_eq!(b.router.inquiry(b.now, "vip").unwrap().score, score_at_accept);
    let fx = b.arrive(inquiry("plain", Category::PreSales));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Deflect { .. })), "no SURGE deflection: {fx:?}");
}

#[test]
fn slots_opened_by_a_level_change_go_to_the_most_proficient_agent_first() {
    let mut b = Bench::new(single_group_settings());
    // Registered first, least proficient.
    b.agent(presence("novice", &[("all", 1)], 1));
    b.agent(presence("expert", &[("all", 5)], 1));
    b.arrive(inquiry("o1", Category::Order));
    b.arrive(inquiry("o2", Category::Order));
    b.accept("expert", "o1");
    b.accept("novice", "o2");
    b.arrive(inquiry("complaint", Category::Complaint));
    // PEAK gives every agent one more chat: two free slots, one waiting.
    let fx = pin(&mut b, None, Level::Peak);
    assert_eq!(offer_pairs(&fx), [pair("complaint", "expert")]);
}

/// The trace names the criterion that decided between the best agent and the
/// second best, whichever of the agents' offerings (languages and skills)
/// each of the two is indexed under.
#[test]
fn the_deciding_criterion_compares_the_two_best_agents_across_offerings() {
    use crate::core::testkit::offers;
    use crate::core::types::Rule;
    let speaker = |id: &str, proficiency: u8, english: bool| {
        let mut p = presence(id, &[("orders", proficiency)], 2);
        if english {
            p.languages.push("en".into());
        }
        p
    };
    // `x` works one chat of two; `y` and a third agent share the other offering.
    let chose = |english: bool, third: (&str, u8)| {
        let mut b = bench();
        b.agent(speaker("x", 5, english));
        b.arrive(inquiry("busy", Category::Order));
        b.accept("x", "busy");
        b.agent(speaker("y", 5, !english));
        b.agent(speaker(third.0, third.1, !english));
        let fx = b.arrive(inquiry("q", Category::Order));
        let offer = offers(&fx)[0];
        (offer.agent.to_string(), offer.trace.rule)
    };
    for english in [false, true] {
        // Best and second in one offering: as free and as skilled, y is first by id.
        assert_eq!(chose(english, ("z", 5)), ("y".to_string(), Some(Rule::LongestIdle)));
        // The second best is x, in the other offering, not y's less skilled neighbour.
        assert_eq!(chose(english, ("w", 3)), ("y".to_string(), Some(Rule::LeastOccupied)));
    }
}
