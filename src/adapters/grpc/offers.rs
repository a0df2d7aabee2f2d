//! Offers to connected desktops: the [`OfferHub`] is an [`EffectSink`] that
//! forwards each `Offer` and `Withdraw` effect to the `Subscribe` streams of
//! the agent concerned (and an accept or completion to the agent's other
//! desktops), and the [`OfferStream`] that a `Subscribe` call returns, whose
//! drop is the desktop's lost heartbeat.
//!
//! The hub must never block the engine: it only `try_send`s. A desktop whose
//! buffer is full has fallen behind: its stream ends with RESOURCE_EXHAUSTED
//! after what it buffered, rather than go on with gaps, and a new
//! `Subscribe` re-sends everything the agent holds.

use crate::adapters::convert;
use crate::adapters::engine::{EffectSink, EngineHandle, Release};
use crate::adapters::redact::Redacted;
use crate::core::{Command, Effect, EventKind, Id, Millis, Router};
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

/// Desktops one agent may have subscribed at once. Each holds a buffer and
/// gets every offer, so one more ends the oldest stream (most likely a
/// desktop gone silent that keepalive has not dropped yet).
pub const DESKTOPS_PER_AGENT: usize = 8;

type Desk = mpsc::Sender<Result<proto::Assignment, Status>>;

#[derive(Default)]
struct Desks {
    by_agent: HashMap<Id, Vec<Desk>>,
    /// New offers prepared for an (agent, inquiry) whose decision is not yet
    /// recorded. Their release reaches every desktop registered by then, so
    /// a desktop registering meanwhile must not be sent that offer from the
    /// router's state too: it would see an unrecorded offer, then the same
    /// offer again. (A renewed deadline or a withdrawal is of an offer
    /// recorded already: the state shows it, and the release follows.)
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
    /// holds, then the `caught_up` mark. Runs on the engine task (inside a
    /// query) so that no offer made meanwhile is lost or sent twice. False
    /// once the hub is closed.
    pub(super) fn register(&self, router: &Router, now: Millis, agent: &Id, desk: Desk) -> bool {
        let mut desks = self.lock();
        if desks.closed {
            return false;
        }
        let held = held_offers(router, now, agent)
            .into_iter()
            .filter(|a| a.active || !desks.unreleased.contains_key(&(agent.clone(), Id::from(inquiry_id(a)))));
        // The mark carries the agent's status: a desktop back after the grace
        // learns it is AWAY.
        let status = router.agent(agent).map_or(0, |a| convert::agent_status(a.status) as i32);
        let caught_up =
            proto::Assignment { agent_id: agent.to_string(), caught_up: true, status, ..Default::default() };
        for assignment in held.chain([caught_up]) {
            if desk.try_send(Ok(assignment)).is_err() {
                tracing::warn!(agent_id = %Redacted(agent), "desktop buffer full while re-sending held offers");
            }
        }
        let list = desks.by_agent.entry(agent.clone()).or_default();
        list.retain(|d| !d.is_closed());
        if list.len() >= DESKTOPS_PER_AGENT {
            let oldest = list.remove(0);
            tracing::warn!(agent_id = %Redacted(agent), "more than {DESKTOPS_PER_AGENT} desktops subscribed; ending the oldest stream");
            // Its stream ends with this status, or, if its buffer is full,
            // as one that fell behind.
            let _ = oldest.try_send(Err(replaced()));
        }
        list.push(desk);
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
    fn release(&self, agent: &Id, assignment: proto::Assignment, new_offer: bool) {
        let mut desks = self.lock();
        let key = (agent.clone(), Id::from(inquiry_id(&assignment)));
        if let Some(count) = desks.unreleased.get_mut(&key).filter(|_| new_offer) {
            *count -= 1;
            if *count == 0 {
                desks.unreleased.remove(&key);
            }
        }
        send_to(&mut desks, agent, assignment);
    }

    /// Whether `agent` has more than one desktop: then what one of them
    /// did (accept, complete) is told to the others. Registration runs on
    /// the engine task too, so a desktop subscribing later sees it in the
    /// state it is sent.
    fn has_several_desks(&self, agent: &str) -> bool {
        self.lock().by_agent.get(agent).is_some_and(|list| list.iter().filter(|d| !d.is_closed()).count() > 1)
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
                agent_id = %Redacted(agent),
                inquiry_id = %Redacted(inquiry_id(&assignment)),
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
                    outgoing.push((offer.agent.clone(), convert::assignment(offer, inquiry), true));
                }
                Effect::OfferRenewed { inquiry, agent, .. } => {
                    let renewed = convert::open_offer(router, now, agent, inquiry);
                    outgoing.extend(renewed.map(|a| (agent.clone(), a, false)));
                }
                Effect::Withdraw { inquiry, agent, reason } => {
                    outgoing.push((agent.clone(), convert::withdrawal(inquiry, agent, reason, now), false))
                }
                Effect::AgentStatusChanged { agent, status, reason } => {
                    outgoing.push((agent.clone(), convert::status_notice(agent, *status, reason, now), false))
                }
                Effect::Event(event) if matches!(event.kind, EventKind::Accepted | EventKind::Completed) => {
                    let Some(agent) = event.agent.as_ref().filter(|a| self.has_several_desks(a)) else { continue };
                    let echo = match event.kind {
                        EventKind::Accepted => active_chat(router, now, agent, &event.inquiry),
                        EventKind::Completed => Some(convert::withdrawal(&event.inquiry, agent, "completed", now)),
                        _ => None,
                    };
                    outgoing.extend(echo.map(|a| (agent.clone(), a, false)));
                }
                _ => {}
            }
        }
        if outgoing.is_empty() {
            return None;
        }
        {
            let mut desks = self.lock();
            for (agent, assignment, _) in outgoing.iter().filter(|(_, _, new_offer)| *new_offer) {
                *desks.unreleased.entry((agent.clone(), Id::from(inquiry_id(assignment)))).or_default() += 1;
            }
        }
        let hub = self.clone();
        Some(Box::new(move || {
            for (agent, assignment, new_offer) in outgoing {
                hub.release(&agent, assignment, new_offer);
            }
        }))
    }
}

fn inquiry_id(assignment: &proto::Assignment) -> &str {
    assignment.inquiry.as_ref().map_or("", |i| i.id.as_str())
}

/// What `agent` holds now, rebuilt from the router's views: its active
/// chats (`active: true`), then its open offers, oldest first — so a desktop
/// that reconnects, even after a router restart, sees all of its work again.
fn held_offers(router: &Router, now: Millis, agent: &str) -> Vec<proto::Assignment> {
    let Some(view) = router.agent(agent) else { return Vec::new() };
    let active = view.active.iter().filter_map(|id| active_chat(router, now, agent, id));
    active.chain(view.offered.iter().filter_map(|id| convert::open_offer(router, now, agent, id))).collect()
}

/// Inquiry `id` as one of `agent`'s active chats (`active: true`).
fn active_chat(router: &Router, now: Millis, agent: &str, id: &str) -> Option<proto::Assignment> {
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
            // The hub ended this stream with a status of its own.
            Poll::Ready(Some(Err(status))) => {
                self.ended = true;
                Poll::Ready(Some(Err(status)))
            }
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

/// The end of the oldest stream of an agent with too many desktops.
fn replaced() -> Status {
    // Not a code desktops retry on: one that subscribed again would end
    // another desktop's stream in turn.
    Status::failed_precondition(format!(
        "this agent subscribed from more than {DESKTOPS_PER_AGENT} desktops at once, so the oldest stream (this one) \
         was ended; close the desktops the agent no longer uses"
    ))
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
            tracing::info!(agent_id = %Redacted(&self.agent), "desktop stream closed; heartbeat grace started");
            return;
        }
        // The engine's queue is full: wait for room rather than lose the
        // disconnect, or the agent would count as connected (never AWAY) for good.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let engine = self.engine.clone();
                runtime.spawn(async move { engine.submit(disconnected).await });
                tracing::info!(agent_id = %Redacted(&self.agent), "desktop stream closed; heartbeat grace starts once the engine has room");
            }
            Err(_) => {
                tracing::warn!(agent_id = %Redacted(&self.agent), "desktop stream closed outside the runtime; the disconnect is lost")
            }
        }
    }
}

#[cfg(test)]
mod tests;
