//! Offers to connected desktops: the [`OfferHub`] is an [`EffectSink`] that
//! forwards each `Offer` and `Withdraw` effect to the `Subscribe` streams of
//! the agent concerned, and the [`OfferStream`] that a `Subscribe` call
//! returns, whose drop is the desktop's lost heartbeat.
//!
//! The hub must never block the engine: it only `try_send`s. A desktop whose
//! buffer is full has fallen behind: its stream ends with RESOURCE_EXHAUSTED
//! after what it buffered, rather than go on with gaps, and a new
//! `Subscribe` re-sends everything the agent holds.

use crate::adapters::convert;
use crate::adapters::engine::{EffectSink, EngineHandle, Release};
use crate::core::{Command, Effect, Id, Millis, Router};
use crate::proto;
use futures::Stream;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tonic::Status;

/// Messages buffered per desktop before further ones are dropped.
pub const DESKTOP_BUFFER: usize = 128;

type Desk = mpsc::Sender<Result<proto::Assignment, Status>>;

#[derive(Default)]
struct Desks {
    by_agent: HashMap<Id, Vec<Desk>>,
    /// Messages prepared for an (agent, inquiry) whose decision is not yet
    /// recorded. Their release reaches every desktop registered by then, so
    /// a desktop registering meanwhile must not be sent that offer from the
    /// router's state too: it would see an unrecorded offer, then the same
    /// offer again.
    unreleased: HashMap<(Id, Id), u32>,
    /// Set at shutdown: streams end and no new ones open.
    closed: bool,
}

/// The open desktop streams per agent id. Cheap to clone; one clone goes into
/// the engine as a sink, another serves `Subscribe`.
#[derive(Clone, Default)]
pub struct OfferHub {
    desks: Arc<Mutex<Desks>>,
}

impl OfferHub {
    /// A hub with no desktops.
    pub fn new() -> OfferHub {
        OfferHub::default()
    }

    /// How many desktop streams agent `agent` has open.
    pub fn connections(&self, agent: &str) -> usize {
        self.lock().by_agent.get(agent).map_or(0, |d| d.iter().filter(|d| !d.is_closed()).count())
    }

    /// Ends every stream and refuses new ones, so a graceful server
    /// shutdown is not held open by desktops.
    pub fn close(&self) {
        let mut desks = self.lock();
        desks.closed = true;
        desks.by_agent.clear();
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn lock(&self) -> MutexGuard<'_, Desks> {
        self.desks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a desktop of `agent`, first queueing the offers it already
    /// holds. Runs on the engine task (inside a query) so that no offer made
    /// meanwhile is lost or sent twice. False once the hub is closed.
    pub(super) fn register(&self, router: &Router, now: Millis, agent: &Id, desk: Desk) -> bool {
        let mut desks = self.lock();
        if desks.closed {
            return false;
        }
        let held = held_offers(router, now, agent)
            .into_iter()
            .filter(|a| a.active || !desks.unreleased.contains_key(&(agent.clone(), Id::from(inquiry_id(a)))));
        for assignment in held {
            if desk.try_send(Ok(assignment)).is_err() {
                tracing::warn!(agent_id = %agent, "desktop buffer full while re-sending held offers");
            }
        }
        desks.by_agent.entry(agent.clone()).or_default().push(desk);
        true
    }

    /// Forgets the closed streams of `agent`.
    fn prune(&self, agent: &str) {
        let mut desks = self.lock();
        if let Some(list) = desks.by_agent.get_mut(agent) {
            list.retain(|d| !d.is_closed());
            if list.is_empty() {
                desks.by_agent.remove(agent);
            }
        }
    }

    /// Sends a prepared message now that its decision is recorded: uncounted
    /// and sent under one lock, so a desktop registering in between neither
    /// misses it nor gets it twice.
    fn release(&self, agent: &Id, assignment: proto::Assignment) {
        let mut desks = self.lock();
        let key = (agent.clone(), Id::from(inquiry_id(&assignment)));
        if let Some(count) = desks.unreleased.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                desks.unreleased.remove(&key);
            }
        }
        send_to(&mut desks, agent, assignment);
    }
}

/// Sends to every open desktop of `agent`, forgetting closed ones.
fn send_to(desks: &mut Desks, agent: &str, assignment: proto::Assignment) {
    let Some(list) = desks.by_agent.get_mut(agent) else { return };
    list.retain(|desk| match desk.try_send(Ok(assignment.clone())) {
        Ok(()) => true,
        // Dropping the sender ends the stream (see `OfferStream`).
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                agent_id = %agent,
                inquiry_id = inquiry_id(&assignment),
                withdrawn = assignment.withdrawn,
                "desktop fell {DESKTOP_BUFFER} messages behind; ending its stream so that it subscribes again"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    if list.is_empty() {
        desks.by_agent.remove(agent);
    }
}

impl EffectSink for OfferHub {
    fn prepare(&mut self, now: Millis, effects: &[Effect], router: &Router) -> Option<Release> {
        let mut outgoing = Vec::new();
        for effect in effects {
            match effect {
                Effect::Offer(offer) => {
                    let inquiry = router.inquiry(now, &offer.inquiry).map(|v| v.inquiry);
                    outgoing.push((offer.agent.clone(), convert::assignment(offer, inquiry)));
                }
                Effect::OfferRenewed { inquiry, agent, .. } => {
                    outgoing.extend(convert::open_offer(router, now, agent, inquiry).map(|a| (agent.clone(), a)));
                }
                Effect::Withdraw { inquiry, agent, .. } => outgoing.push((agent.clone(), withdrawal(inquiry, agent))),
                _ => {}
            }
        }
        if outgoing.is_empty() {
            return None;
        }
        {
            let mut desks = self.lock();
            for (agent, assignment) in &outgoing {
                *desks.unreleased.entry((agent.clone(), Id::from(inquiry_id(assignment)))).or_default() += 1;
            }
        }
        let hub = self.clone();
        Some(Box::new(move || {
            for (agent, assignment) in outgoing {
                hub.release(&agent, assignment);
            }
        }))
    }
}

fn inquiry_id(assignment: &proto::Assignment) -> &str {
    assignment.inquiry.as_ref().map_or("", |i| i.id.as_str())
}

/// The message that tells a desktop to drop an earlier offer.
fn withdrawal(inquiry: &str, agent: &str) -> proto::Assignment {
    proto::Assignment {
        inquiry: Some(proto::Inquiry { id: inquiry.to_string(), ..proto::Inquiry::default() }),
        agent_id: agent.to_string(),
        withdrawn: true,
        ..proto::Assignment::default()
    }
}

/// What `agent` holds now, rebuilt from the router's views: its active
/// chats (`active: true`), then its open offers, oldest first — so a desktop
/// that reconnects, even after a router restart, sees all of its work again.
fn held_offers(router: &Router, now: Millis, agent: &str) -> Vec<proto::Assignment> {
    let Some(view) = router.agent(agent) else { return Vec::new() };
    let active = view.active.iter().filter_map(|id| {
        let v = router.inquiry(now, id)?;
        Some(proto::Assignment {
            inquiry: Some(convert::inquiry(v.inquiry)),
            agent_id: agent.to_string(),
            group: v.group.to_string(),
            attempt: v.attempts,
            note: v.note.map(convert::note),
            active: true,
            ..proto::Assignment::default()
        })
    });
    active.chain(view.offered.iter().filter_map(|id| convert::open_offer(router, now, agent, id))).collect()
}

/// The server stream of one `Subscribe` call. Dropping it (the desktop went
/// away, or the server is stopping) reports the lost heartbeat.
pub struct OfferStream {
    // Declared before `heartbeat` so the receiver is closed when the
    // heartbeat's `Drop` prunes the hub.
    rx: mpsc::Receiver<Result<proto::Assignment, Status>>,
    heartbeat: Heartbeat,
    ended: bool,
}

impl OfferStream {
    pub(super) fn new(rx: mpsc::Receiver<Result<proto::Assignment, Status>>, heartbeat: Heartbeat) -> OfferStream {
        OfferStream { rx, heartbeat, ended: false }
    }
}

impl Stream for OfferStream {
    type Item = Result<proto::Assignment, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            // The hub let go while still open: this desktop fell behind.
            Poll::Ready(None) if !self.ended && !self.heartbeat.hub.is_closed() => {
                self.ended = true;
                Poll::Ready(Some(Err(fell_behind())))
            }
            // The router is stopping: a desktop should reconnect (to this
            // router once it is back, or to its replacement).
            Poll::Ready(None) if !self.ended => {
                self.ended = true;
                Poll::Ready(Some(Err(Status::unavailable(
                    "the router is stopping; call Subscribe again (with backoff) to reconnect",
                ))))
            }
            other => other,
        }
    }
}

/// The end of a stream whose desktop did not keep up.
fn fell_behind() -> Status {
    Status::resource_exhausted(format!(
        "this desktop fell {DESKTOP_BUFFER} messages behind and its stream was ended; call Subscribe again: \
         it re-sends every offer and chat the agent holds"
    ))
}

/// Sends `DesktopDisconnected` for its agent when dropped.
pub(super) struct Heartbeat {
    pub(super) agent: Id,
    pub(super) engine: EngineHandle,
    pub(super) hub: OfferHub,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.hub.prune(&self.agent);
        let disconnected = Command::DesktopDisconnected { agent: self.agent.clone() };
        if self.engine.try_submit(disconnected.clone()) {
            tracing::info!(agent_id = %self.agent, "desktop stream closed; heartbeat grace started");
            return;
        }
        // The engine's queue is full: wait for room rather than lose the
        // disconnect, or the agent would count as connected (never AWAY) for good.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let engine = self.engine.clone();
                runtime.spawn(async move { engine.submit(disconnected).await });
                tracing::info!(agent_id = %self.agent, "desktop stream closed; heartbeat grace starts once the engine has room");
            }
            Err(_) => {
                tracing::warn!(agent_id = %self.agent, "desktop stream closed outside the runtime; the disconnect is lost")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testkit::{self, Bench};
    use crate::core::{Category, RoutingSettings};

    type Rx = mpsc::Receiver<Result<proto::Assignment, Status>>;

    fn desk(hub: &OfferHub, bench: &Bench, agent: &str, buffer: usize) -> Rx {
        let (tx, rx) = mpsc::channel(buffer);
        assert!(hub.register(&bench.router, bench.now, &agent.into(), tx));
        rx
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
        let mut late = desk(&hub, &bench, "a1", 8);
        assert_eq!(next(&mut late), offer);

        let withdraw = [Effect::Withdraw { inquiry: "q1".into(), agent: "a1".into(), reason: "timeout" }];
        if let Some(release) = hub.prepare(bench.now, &withdraw, &bench.router) {
            release();
        }
        for rx in [&mut rx, &mut late] {
            let w = next(rx);
            assert!(w.withdrawn);
            assert_eq!(w.inquiry.unwrap().id, "q1");
        }
    }

    #[test]
    fn a_desktop_subscribing_before_an_offer_is_recorded_gets_it_once_when_it_is() {
        let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
        bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
        let fx = bench.arrive(testkit::inquiry("q1", Category::Order));
        let release = hub.prepare(bench.now, &fx, &bench.router).expect("an offer to send");
        let mut rx = desk(&hub, &bench, "a1", 8);
        assert!(rx.try_recv().is_err(), "not shown before it is recorded");
        release();
        assert_eq!(next(&mut rx).inquiry.unwrap().id, "q1");
        assert!(rx.try_recv().is_err(), "once");
        let mut late = desk(&hub, &bench, "a1", 8);
        assert_eq!(next(&mut late).inquiry.unwrap().id, "q1", "recorded: later desktops get it from the state");
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
        let mut late = desk(&hub, &bench, "a1", 8);
        assert_eq!(
            next(&mut late).expires_at_ms,
            renewed.expires_at_ms,
            "a resubscribing desktop sees the moved deadline"
        );
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
    fn a_desktop_that_fell_behind_gets_what_it_buffered_then_is_told_to_subscribe_again() {
        use futures::StreamExt;
        let (mut hub, mut bench) = (OfferHub::new(), Bench::new(RoutingSettings::default()));
        bench.agent(testkit::presence("a1", &[("orders", 3)], 5));
        let (tx, rx) = mpsc::channel(1);
        assert!(hub.register(&bench.router, bench.now, &"a1".into(), tx));
        let (_engine, handle) =
            crate::adapters::engine::Engine::new(Router::new(RoutingSettings::default()).unwrap(), vec![]);
        let heartbeat = Heartbeat { agent: "a1".into(), engine: handle, hub: hub.clone() };
        let stream = OfferStream::new(rx, heartbeat);
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
}
