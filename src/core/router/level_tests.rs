//! Load levels, overrides and fatigue, one test per rule, with the domain's
//! default numbers.

use super::tests::{admin, bench, pin};
use crate::core::command::{Actor, Command};
use crate::core::effect::{Effect, Scope};
use crate::core::error::CoreError;
use crate::core::testkit::{inquiry, offers, presence, Bench};
use crate::core::types::{AgentStatus, Category, InquiryState, Level};

#[test]
fn a_burst_raises_the_level_and_it_steps_down_only_after_the_cooldown() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 2));
    // orders baseline is 20/min: 5x = 100 arrivals within the 60 s window is SURGE.
    for i in 0..100 {
        b.arrive(inquiry(&format!("q{i}"), Category::Order));
        b.apply(Command::Cancel { inquiry: format!("q{i}").into(), shop: None });
    }
    let fx = b.advance(1_000);
    let changes: Vec<_> =
        fx.iter().filter_map(|e| if let Effect::LevelChanged(c) = e { Some(c) } else { None }).collect();
    assert!(changes.iter().any(|c| c.scope == Scope::Group("orders".into()) && c.to == Level::Surge), "{changes:?}");
    assert!(changes.iter().any(|c| c.scope == Scope::Router && c.to == Level::Surge));
    assert_eq!(b.router.agent("o").unwrap().capacity, 4, "SURGE adds two chats");
    // The window empties after 60 s; the cooldown (5 min) keeps SURGE until then.
    for _ in 0..(300 + 50) {
        b.advance(1_000);
    }
    assert_eq!(b.router.router_level(), Level::Surge);
    let mut stepped = false;
    for _ in 0..20 {
        stepped |= b.advance(1_000).iter().any(|e| matches!(e, Effect::LevelChanged(c) if c.to == Level::Normal));
    }
    assert!(stepped);
}

#[test]
fn a_backlog_taken_in_after_a_restart_is_not_measured_as_a_burst() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 5));
    // Ten minutes of 60 a minute (PEAK: 2x the orders baseline of 20),
    // received while the router was down, taken in at once.
    for i in 0..600u64 {
        let received_at = b.now - 600_000 + i * 1_000;
        let command =
            Command::ArriveReceived { inquiry: Box::new(inquiry(&format!("q{i}"), Category::Order)), received_at };
        b.apply(command);
        b.apply(Command::Cancel { inquiry: format!("q{i}").into(), shop: None });
    }
    b.advance(1_000);
    let orders = b.router.groups(b.now).into_iter().find(|g| &*g.id == "orders").unwrap();
    assert!((55.0..=60.0).contains(&orders.arrivals_per_min), "the rate they came at, not 600 a minute: {orders:?}");
    assert_eq!(orders.level, Level::Peak, "PEAK as at 60 a minute, not SURGE");
}

#[test]
fn a_scope_keeps_every_override_window_and_the_highest_in_force_wins() {
    let mut b = bench();
    let t = b.now;
    let window = |b: &mut Bench, level, from, until| {
        b.try_apply(Command::SetLevelOverride { actor: admin(), group: None, level, from: t + from, until: t + until })
    };
    // The promotion's whole window at SURGE, then the evening spike at PEAK
    // inside it, and the next day's opening: none drops another.
    window(&mut b, Level::Surge, 10_000, 40_000).unwrap();
    window(&mut b, Level::Peak, 20_000, 30_000).unwrap();
    window(&mut b, Level::Peak, 50_000, 60_000).unwrap();
    b.advance(25_000);
    assert_eq!(b.router.router_level(), Level::Surge, "the higher pin in force wins");
    b.advance(30_000);
    assert_eq!(b.router.router_level(), Level::Peak, "the later window survived the others being set");
    // Bounded: 16 windows not yet ended per scope; the same window twice is one.
    window(&mut b, Level::Peak, 50_000, 60_000).unwrap();
    for i in 0..15 {
        window(&mut b, Level::Peak, 100_000 + i * 10_000, 105_000 + i * 10_000).unwrap();
    }
    let refused = window(&mut b, Level::Peak, 900_000, 905_000);
    assert!(matches!(refused, Err(CoreError::FailedPrecondition(_))), "the 17th: {refused:?}");
    assert_eq!(b.router.router_level(), Level::Peak, "a refused window changes nothing");
    b.apply(Command::ClearLevelOverride { actor: admin(), group: None });
    assert!(!b.router.has_override(None, b.now), "clearing ends every window of the scope");
}

#[test]
fn an_override_may_start_in_the_future_and_ends_by_itself() {
    let mut b = bench();
    let (from, until) = (b.now + 10_000, b.now + 20_000);
    b.apply(Command::SetLevelOverride { actor: admin(), group: None, level: Level::Peak, from, until });
    assert_eq!(b.router.router_level(), Level::Normal);
    b.advance(10_000);
    assert_eq!(b.router.router_level(), Level::Peak);
    assert_eq!(b.router.groups(b.now)[0].reserve_ratio, 0.2);
    b.advance(10_000);
    assert_eq!(b.router.router_level(), Level::Normal);
    let agent = Actor::agent("x");
    let denied = b.try_apply(Command::SetLevelOverride {
        actor: agent,
        group: None,
        level: Level::Surge,
        from,
        until: until + 99_999,
    });
    assert!(matches!(denied, Err(CoreError::PermissionDenied(_))));
}

#[test]
fn fatigue_stops_new_work_after_45_minutes_except_at_surge() {
    let mut b = bench();
    b.agent(presence("tired", &[("orders", 3)], 5));
    b.advance(45 * 60_000);
    assert!(offers(&b.arrive(inquiry("q1", Category::Order))).is_empty());
    let fx = pin(&mut b, None, Level::Surge);
    assert_eq!(b.router.inquiry_state("q1"), Some(InquiryState::Offered), "advisory only at SURGE");
    assert!(offers(&fx)[0].trace.agent_fatigued, "the offer says a break is due");
    b.apply(Command::ClearLevelOverride { actor: admin(), group: None });
    // A 10 minute break resets the count.
    let mut rest = presence("tired", &[("orders", 3)], 5);
    rest.status = AgentStatus::Break;
    b.agent(rest);
    b.advance(10 * 60_000);
    b.agent(presence("tired", &[("orders", 3)], 5));
    let fx = b.arrive(inquiry("q2", Category::Order));
    assert_eq!(offers(&fx).len(), 1);
    assert!(!offers(&fx)[0].trace.agent_fatigued, "rested");
}

#[test]
fn staffing_advice_follows_the_arrival_rate_and_adds_the_standby_reserve_at_peak() {
    let mut b = bench();
    for i in 0..30 {
        b.arrive(inquiry(&format!("q{i}"), Category::Order));
        b.now += 2_000;
    }
    b.advance(1_000);
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert!(orders.erlang_agents > 0);
    assert!(orders.level >= Level::Peak, "30 waiting is over the PEAK queue threshold");
    assert_eq!(orders.recommended_agents, (f64::from(orders.erlang_agents) * 1.25).ceil() as u32);
}

#[test]
fn every_offer_carries_the_candidates_skipped_and_why() {
    let mut b = bench();
    b.agent(presence("full", &[("orders", 3)], 1));
    let mut away = presence("away", &[("orders", 3)], 5);
    away.status = AgentStatus::Away;
    b.agent(away);
    let mut english = presence("en", &[("orders", 3)], 5);
    english.languages = vec!["en".into()];
    b.agent(english);
    b.agent(presence("pick", &[("orders", 1)], 5));
    b.arrive(inquiry("first", Category::Order)); // goes to `full` (proficiency 3 vs en's language)
    let fx = b.arrive(inquiry("second", Category::Order));
    let t = &offers(&fx)[0].trace;
    assert_eq!(offers(&fx)[0].agent.as_str(), "pick");
    assert_eq!((t.considered, t.skipped_full, t.skipped_not_available, t.skipped_language), (4, 1, 1, 1));
    let view = b.router.inquiry(b.now, "second").unwrap();
    assert_eq!(view.timeline[0].trace.as_deref(), Some(t));
}

#[test]
fn staffing_counts_the_work_agents_get_and_levels_count_each_customer_once() {
    // 40 LOW pre-sales at SURGE go to the bot, which hands 10 back.
    let mut deflecting = bench();
    deflecting.agent(presence("pre", &[("pre_sales", 3)], 5));
    pin(&mut deflecting, Some("pre_sales"), Level::Surge);
    for i in 0..40 {
        deflecting.arrive(inquiry(&format!("d{i}"), Category::PreSales));
    }
    for i in 0..10 {
        let mut back = inquiry(&format!("d{i}"), Category::PreSales);
        back.bot_attempted = true;
        deflecting.arrive(back);
    }
    // The same 10 arriving straight from the bot.
    let mut direct = bench();
    direct.agent(presence("pre", &[("pre_sales", 3)], 5));
    pin(&mut direct, Some("pre_sales"), Level::Surge);
    for i in 0..10 {
        let mut q = inquiry(&format!("d{i}"), Category::PreSales);
        q.bot_attempted = true;
        direct.arrive(q);
    }
    let pre_sales = |b: &mut Bench| {
        b.advance(1_000);
        b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "pre_sales").unwrap()
    };
    let (deflecting, direct) = (pre_sales(&mut deflecting), pre_sales(&mut direct));
    assert_eq!((deflecting.arrivals_per_min, direct.arrivals_per_min), (40.0, 10.0));
    assert!(direct.erlang_agents > 0);
    assert_eq!(deflecting.erlang_agents, direct.erlang_agents, "advice for the 10 agents get, not 50");
}

#[test]
fn level_changes_say_when_a_pin_set_or_ended_them() {
    let mut b = bench();
    let (from, until) = (b.now, b.now + 60_000);
    let set = |group: Option<&str>| Command::SetLevelOverride {
        actor: admin(),
        group: group.map(String::from),
        level: Level::Surge,
        from,
        until,
    };
    let changes = |fx: &[Effect]| -> Vec<(Scope, String)> {
        fx.iter()
            .filter_map(
                |e| if let Effect::LevelChanged(c) = e { Some((c.scope.clone(), c.reason.clone())) } else { None },
            )
            .collect()
    };
    let mut up = changes(&b.apply(set(Some("orders"))));
    up.extend(changes(&b.apply(set(None))));
    assert!(up.contains(&(Scope::Group("orders".into()), "ops override to at least SURGE".into())), "{up:?}");
    assert!(up.contains(&(Scope::Router, "highest group level (orders SURGE)".into())), "{up:?}");
    assert!(up.contains(&(Scope::Group("fans".into()), "ops override to at least SURGE".into())), "the router's pin");
    let mut down = Vec::new();
    for _ in 0..61 {
        down.extend(changes(&b.advance(1_000)));
    }
    let orders = down.iter().find(|(scope, _)| *scope == Scope::Group("orders".into())).expect("orders stepped down");
    assert!(orders.1.starts_with("ops override ended; measured: "), "{down:?}");
    assert!(down.contains(&(Scope::Router, "every group NORMAL".into())), "{down:?}");
}

#[test]
fn the_staffing_rate_leaves_out_what_the_bot_took() {
    let mut b = bench();
    pin(&mut b, Some("pre_sales"), Level::Surge);
    for i in 0..10 {
        b.arrive(inquiry(&format!("low{i}"), Category::PreSales)); // LOW: to the bot at SURGE
    }
    let mut vip = inquiry("vip", Category::PreSales);
    vip.customer.vip_tier = 1;
    b.arrive(vip);
    b.advance(1_000); // measured once a second
    let pre_sales = b.router.groups(b.now).into_iter().find(|g| &*g.id == "pre_sales").unwrap();
    assert_eq!((pre_sales.arrivals_per_min, pre_sales.routed_per_min), (11.0, 1.0));
}

#[test]
fn a_customer_no_one_on_duty_can_serve_does_not_raise_the_groups_level() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 5));
    let mut japanese = inquiry("ja", Category::Order);
    japanese.language = "ja".into();
    b.arrive(japanese);
    for _ in 0..200 {
        b.advance(1_000);
    }
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!((orders.level, orders.oldest_wait_ms / 1000), (Level::Normal, 200), "shown, but not load");
    assert_eq!(orders.unservable, 1);
    // Someone who could serve them is on duty, busy: now it is a matter of capacity.
    let mut speaker = presence("ja-speaker", &[("orders", 3)], 1);
    speaker.languages = vec!["ja".into()];
    b.agent(speaker);
    b.accept("ja-speaker", "ja");
    let mut second = inquiry("ja2", Category::Order);
    second.language = "ja".into();
    b.arrive(second);
    for _ in 0..60 {
        b.advance(1_000);
    }
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!((orders.level, orders.unservable), (Level::Peak, 0), "waited a minute for a busy agent");
    assert_eq!(b.router.agent("ja-speaker").unwrap().status, AgentStatus::Available);
}

#[test]
fn slots_a_level_opens_go_one_by_one_to_the_least_occupied() {
    let mut b = bench();
    b.agent(presence("a", &[("after_sales", 3)], 1));
    b.agent(presence("b", &[("after_sales", 3)], 3));
    for i in 0..4 {
        let id = format!("busy{i}");
        let fx = b.arrive(inquiry(&id, Category::AfterSalesRefund));
        let agent = offers(&fx)[0].agent.to_string();
        b.accept(&agent, &id);
    }
    b.arrive(inquiry("r1", Category::AfterSalesRefund));
    b.arrive(inquiry("r2", Category::AfterSalesRefund));
    // SURGE: two more chats each. a (1/3) takes r1 and is at 2/3; b (3/5) is
    // then the less occupied and takes r2.
    let fx = pin(&mut b, Some("after_sales"), Level::Surge);
    let placed: Vec<_> = offers(&fx).iter().map(|o| (o.inquiry.to_string(), o.agent.to_string())).collect();
    assert_eq!(placed, [("r1".to_string(), "a".to_string()), ("r2".to_string(), "b".to_string())]);
}

#[test]
fn a_customer_only_an_overflow_groups_busy_agent_could_serve_counts_in_the_load() {
    let mut b = bench();
    b.agent(presence("o", &[("orders", 3)], 5));
    let mut speaker = presence("ja-speaker", &[("after_sales", 3)], 1);
    speaker.languages = vec!["ja".into()];
    b.agent(speaker);
    let mut refund = inquiry("refund", Category::AfterSalesRefund);
    refund.language = "ja".into();
    b.arrive(refund);
    b.accept("ja-speaker", "refund");
    let mut order = inquiry("ja-order", Category::Order);
    order.language = "ja".into();
    b.arrive(order);
    for _ in 0..60 {
        b.advance(1_000);
    }
    let orders = b.router.groups(b.now).into_iter().find(|g| g.id.as_str() == "orders").unwrap();
    assert_eq!((orders.level, orders.unservable), (Level::Peak, 0), "orders overflows to after_sales");
}
