use super::*;
use crate::core::testkit::{self, Bench};
use crate::core::{Category, RoutingSettings};

type Rx = mpsc::Receiver<Result<proto::Assignment, Status>>;

/// A registered desktop, after the catch-up it starts with.
fn desk(hub: &OfferHub, bench: &Bench, agent: &str, buffer: usize) -> Rx {
    subscribe(hub, bench, agent, buffer).0
}

/// A registered desktop, and what it was sent before the `caught_up` mark.
fn subscribe(hub: &OfferHub, bench: &Bench, agent: &str, buffer: usize) -> (Rx, Vec<proto::Assignment>) {
    let (tx, mut rx) = mpsc::channel(buffer);
    assert!(hub.register(&bench.router, bench.now, &agent.into(), tx));
    let mut held = Vec::new();
    loop {
        let message = next(&mut rx);
        if message.caught_up {
            assert_eq!((message.inquiry, message.agent_id.as_str()), (None, agent), "the mark carries no inquiry");
            return (rx, held);
        }
        held.push(message);
    }
}

fn next(rx: &mut Rx) -> proto::Assignment {
    rx.try_recv().expect("a message").expect("not an error")
}

#[test]
fn offers_and_withdrawals_reach_the_agents_desktops() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let mut rx = desk(&hub, &bench, "a1", 8);
    let mut other = desk(&hub, &bench, "a2", 8);
    let fx = bench.arrive(testkit::inquiry("q1", Category::Order));
    if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
        release();
    }
    let offer = next(&mut rx);
    assert_eq!((offer.inquiry.as_ref().unwrap().id.as_str(), offer.withdrawn), ("q1", false));
    assert_eq!(offer.inquiry.as_ref().unwrap().shop_id, "shop-1", "the offer carries the inquiry");
    assert!(other.try_recv().is_err());

    // A second desktop of the same agent first gets the offer it holds, unchanged.
    let (mut late, held) = subscribe(&hub, &bench, "a1", 8);
    assert_eq!(held, [offer]);

    let withdraw = [Effect::Withdraw { inquiry: "q1".into(), agent: "a1".into(), reason: "timeout" }];
    if let Some(release) = hub.prepare(bench.now, &withdraw, &bench.router) {
        release();
    }
    for rx in [&mut rx, &mut late] {
        let w = next(rx);
        assert!(w.withdrawn);
        assert_eq!(w.inquiry.unwrap().id, "q1");
        let note = w.note.unwrap();
        assert_eq!((note.summary.as_str(), note.author.as_str()), ("timeout", "system"), "the desktop is told why");
        assert_eq!(note.at_ms, bench.now as i64);
    }
}

#[test]
fn a_desktop_subscribing_before_an_offer_is_recorded_gets_it_once_when_it_is() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let fx = bench.arrive(testkit::inquiry("q1", Category::Order));
    let release = hub.prepare(bench.now, &fx, &bench.router).expect("an offer to send");
    let (mut rx, held) = subscribe(&hub, &bench, "a1", 8);
    assert!(held.is_empty(), "not shown before it is recorded");
    release();
    assert_eq!(next(&mut rx).inquiry.unwrap().id, "q1");
    assert!(rx.try_recv().is_err(), "once");
    let (_late, held) = subscribe(&hub, &bench, "a1", 8);
    assert_eq!(held.len(), 1, "recorded: later desktops get it from the state");
    assert_eq!(held[0].inquiry.as_ref().unwrap().id, "q1");
}

#[test]
fn a_moved_deadline_reaches_the_desktop_and_later_subscribers() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let mut rx = desk(&hub, &bench, "a1", 8);
    let fx = bench.arrive(testkit::inquiry("q1", Category::Order));
    if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
        release();
    }
    let first = next(&mut rx);
    let fx = bench.apply(Command::ExtendOffers { by: 20_000 });
    if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
        release();
    }
    let renewed = next(&mut rx);
    assert_eq!(renewed.expires_at_ms, first.expires_at_ms + 20_000);
    assert_eq!(
        (renewed.inquiry, renewed.offered_at_ms, renewed.withdrawn),
        (first.inquiry, first.offered_at_ms, false)
    );
    let (_late, held) = subscribe(&hub, &bench, "a1", 8);
    assert_eq!(held[0].expires_at_ms, renewed.expires_at_ms, "a resubscribing desktop sees the moved deadline");
}

#[test]
fn a_full_desktop_is_let_go_and_a_closed_one_forgotten() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let mut full = desk(&hub, &bench, "a1", 1);
    let closed = desk(&hub, &bench, "a1", 8);
    drop(closed);
    for id in ["q1", "q2"] {
        let fx = bench.arrive(testkit::inquiry(id, Category::Order));
        if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
            release();
        }
    }
    assert_eq!(next(&mut full).inquiry.unwrap().id, "q1");
    assert!(
        matches!(full.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)),
        "fallen behind, the desktop is let go rather than waited for or shown a gap"
    );
    assert_eq!(hub.connections("a1"), 0);
}

#[test]
fn a_desktop_beyond_the_limit_ends_the_agents_oldest_stream_with_a_reason() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let mut desks: Vec<Rx> = (0..DESKTOPS_PER_AGENT).map(|_| desk(&hub, &bench, "a1", 8)).collect();
    let other = desk(&hub, &bench, "a2", 8);
    assert_eq!(hub.connections("a1"), DESKTOPS_PER_AGENT);
    desks.push(desk(&hub, &bench, "a1", 8));
    assert_eq!(hub.connections("a1"), DESKTOPS_PER_AGENT, "one more ends one");
    assert_eq!(hub.connections("a2"), 1, "other agents' desktops stay");
    drop(other);

    let oldest = desks.remove(0);
    let stream = OfferStream::new(oldest, heartbeat(&hub, "a1"));
    let got: Vec<_> = futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(stream));
    assert_eq!(got.len(), 1, "only the reason, then the end: {got:?}");
    let end = got[0].as_ref().unwrap_err();
    assert_eq!(end.code(), tonic::Code::FailedPrecondition);
    assert!(end.message().contains("close the desktops the agent no longer uses"), "{}", end.message());

    let fx = bench.arrive(testkit::inquiry("q1", Category::Order));
    if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
        release();
    }
    for rx in &mut desks {
        assert_eq!(next(rx).inquiry.unwrap().id, "q1", "every remaining desktop gets the offer");
    }
}

/// A heartbeat whose disconnect goes to an engine nobody runs.
fn heartbeat(hub: &OfferHub, agent: &str) -> Heartbeat {
    let (_engine, handle) =
        crate::adapters::engine::Engine::new(Router::new(RoutingSettings::default()).unwrap(), vec![]);
    Heartbeat { agent: agent.into(), engine: handle, hub: hub.clone() }
}

#[test]
fn a_desktop_that_fell_behind_gets_what_it_buffered_then_is_told_to_subscribe_again() {
    use futures::StreamExt;
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let rx = desk(&hub, &bench, "a1", 1);
    let stream = OfferStream::new(rx, heartbeat(&hub, "a1"));
    for id in ["q1", "q2"] {
        let fx = bench.arrive(testkit::inquiry(id, Category::Order));
        if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
            release();
        }
    }
    let got: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].as_ref().unwrap().inquiry.as_ref().unwrap().id, "q1");
    let end = got[1].as_ref().unwrap_err();
    assert_eq!(end.code(), tonic::Code::ResourceExhausted);
    assert!(end.message().contains("call Subscribe again"), "{}", end.message());
}

#[test]
fn closing_ends_the_streams_and_refuses_new_ones() {
    let (hub, bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    let mut rx = desk(&hub, &bench, "a1", 8);
    hub.close();
    assert!(matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
    let (tx, _rx) = mpsc::channel(1);
    assert!(!hub.register(&bench.router, bench.now, &"a1".into(), tx));
}

/// Applies `command` and hands its effects to the hub.
fn apply_and_send(hub: &mut OfferHub, bench: &mut Bench, command: Command) {
    let fx = bench.apply(command);
    if let Some(release) = hub.prepare(bench.now, &fx, &bench.router) {
        release();
    }
}

#[test]
fn what_one_desktop_of_an_agent_does_reaches_its_other_desktops() {
    use crate::core::Actor;
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    bench.agent(testkit::presence("b1", &[("orders", 1)], 5));
    let mut solo = desk(&hub, &bench, "b1", 8);
    let mut desks = [desk(&hub, &bench, "a1", 8), desk(&hub, &bench, "a1", 8)];
    let arrive = Command::Arrive(Box::new(testkit::inquiry("q1", Category::Order)));
    apply_and_send(&mut hub, &mut bench, arrive);
    for rx in &mut desks {
        assert!(!next(rx).active, "the offer");
    }
    apply_and_send(&mut hub, &mut bench, Command::Accept { actor: Actor::agent("a1"), inquiry: "q1".into() });
    for rx in &mut desks {
        let accepted = next(rx);
        assert_eq!((accepted.inquiry.unwrap().id.as_str(), accepted.active), ("q1", true), "now an active chat");
    }
    apply_and_send(&mut hub, &mut bench, Command::Complete { actor: Actor::agent("a1"), inquiry: "q1".into() });
    for rx in &mut desks {
        let done = next(rx);
        assert_eq!((done.withdrawn, done.note.unwrap().summary.as_str()), (true, "completed"));
    }
    // An agent with one desktop is not echoed what it did itself...
    let mut away = testkit::presence("a1", &[("orders", 3)], 5);
    away.status = crate::core::AgentStatus::Away;
    bench.agent(away);
    let arrive = Command::Arrive(Box::new(testkit::inquiry("q2", Category::Order)));
    apply_and_send(&mut hub, &mut bench, arrive);
    let rx = &mut solo;
    assert_eq!(next(rx).inquiry.unwrap().id, "q2");
    apply_and_send(&mut hub, &mut bench, Command::Accept { actor: Actor::agent("b1"), inquiry: "q2".into() });
    assert!(rx.try_recv().is_err(), "nothing new for the desktop that accepted");
    // ...but told when an admin completes its chat.
    let admin = Actor { id: "ops".into(), role: crate::core::command::Role::Admin };
    apply_and_send(&mut hub, &mut bench, Command::Complete { actor: admin, inquiry: "q2".into() });
    let done = next(rx);
    assert_eq!((done.withdrawn, done.note.unwrap().summary.as_str()), (true, "completed by an admin"));
}

#[test]
fn a_status_change_reaches_the_agents_desktops_with_its_reason() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    let mut rx = desk(&hub, &bench, "a1", 8);
    let mut away = testkit::presence("a1", &[("orders", 3)], 5);
    away.status = crate::core::AgentStatus::Away;
    let actor = crate::core::Actor { id: "ops".into(), role: crate::core::command::Role::Admin };
    apply_and_send(&mut hub, &mut bench, Command::SetPresence { actor, presence: away });
    let told = next(&mut rx);
    assert_eq!((told.inquiry, told.withdrawn, told.status), (None, false, proto::AgentStatus::Away as i32));
    assert_eq!(told.note.unwrap().summary, "set by an admin");
}

#[test]
fn a_subscription_sees_an_offer_whose_new_deadline_is_on_its_way_and_ends_with_the_status() {
    let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
    bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
    apply_and_send(&mut hub, &mut bench, Command::Arrive(Box::new(testkit::inquiry("q1", Category::Order))));
    let fx = bench.apply(Command::ExtendOffers { by: 20_000 });
    let release = hub.prepare(bench.now, &fx, &bench.router).expect("a renewal to send");
    let (tx, mut rx) = mpsc::channel(8);
    assert!(hub.register(&bench.router, bench.now, &"a1".into(), tx));
    let held = next(&mut rx);
    assert_eq!(held.inquiry.unwrap().id, "q1", "recorded already: not left out while its renewal is on its way");
    let mark = next(&mut rx);
    assert!(mark.caught_up);
    assert_eq!(mark.status, proto::AgentStatus::Available as i32, "the mark says where the agent stands");
    release();
    assert!(next(&mut rx).expires_at_ms > 0, "then the renewal");
}
