//! Publishes the core's effects on the subjects of SPEC section 5, as JSON
//! with the proto field names (`Content-Type: application/json`) or, with
//! `nats.outbound_encoding = "protobuf"`, as the protobuf messages of
//! `proto/` (`Content-Type: application/protobuf`).
//!
//! The sink only encodes and queues; one publisher task sends in order, so
//! the engine never waits on the network.

use super::Subjects;
use crate::adapters::convert;
use crate::adapters::engine::{EffectSink, EngineHandle, Release};
use crate::config::NatsSettings;
use crate::config::WireEncoding;
use crate::core::{Command, Effect, Id, Millis, Router};
use crate::proto;
use async_nats::HeaderMap;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One message to publish.
#[derive(Debug)]
pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
    /// Published through JetStream and retried until a stream stored it
    /// (deflections: the bot's only copy of the customer's inquiry).
    pub kept: bool,
    /// The deflected inquiry whose storing the router is told of, so a
    /// restart publishes again only what was never stored.
    pub confirms: Option<Id>,
}

/// Encodes `message` for `subject` in `encoding`, with its `Content-Type`.
fn encode<T: serde::Serialize + prost::Message>(encoding: WireEncoding, subject: String, message: &T) -> Outgoing {
    let (content_type, payload) = match encoding {
        WireEncoding::Json => {
            ("application/json", serde_json::to_vec(message).expect("wire messages always serialize"))
        }
        WireEncoding::Protobuf => ("application/protobuf", message.encode_to_vec()),
    };
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", content_type);
    Outgoing { subject, headers, payload: payload.into(), kept: false, confirms: None }
}

/// The inquiry for the bot on `deflections.<shop>`, with `Nats-Msg-Id:
/// <id>.deflect` so the deflections stream keeps one copy of a resent one.
fn deflection(
    encoding: WireEncoding,
    subjects: &Subjects,
    router: &Router,
    now: Millis,
    inquiry: &str,
    shop: &str,
) -> Option<Outgoing> {
    let view = router.inquiry(now, inquiry)?;
    let mut message = encode(encoding, subjects.deflections(shop), &convert::inquiry(view.inquiry));
    message.headers.insert("Nats-Msg-Id", format!("{inquiry}.deflect").as_str());
    message.kept = true;
    message.confirms = Some(inquiry.into());
    Some(message)
}

/// The effect sink side: encodes effects into a queue for the publisher task.
pub struct NatsPublisher {
    subjects: Subjects,
    encoding: WireEncoding,
    queue: mpsc::UnboundedSender<Outgoing>,
}

impl NatsPublisher {
    /// A sink and the receiving end the publisher task drains.
    pub fn new(subjects: Subjects, encoding: WireEncoding) -> (NatsPublisher, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (NatsPublisher { subjects, encoding, queue: tx }, rx)
    }
}

/// Messages of one command, sent together once it is recorded.
struct Prepared(Vec<Outgoing>);

impl Prepared {
    fn send(&mut self, message: Outgoing) {
        self.0.push(message);
    }
}

impl EffectSink for NatsPublisher {
    fn prepare(&mut self, now: Millis, effects: &[Effect], router: &Router) -> Option<Release> {
        let s = &self.subjects;
        let encoding = self.encoding;
        let mut out = Prepared(Vec::new());
        for effect in effects {
            match effect {
                Effect::Offer(offer) => {
                    let inquiry = router.inquiry(now, &offer.inquiry).map(|v| v.inquiry);
                    out.send(encode(encoding, s.assignments(&offer.agent), &convert::assignment(offer, inquiry)));
                    out.send(encode(encoding, s.events(&offer.shop), &convert::offered_event(offer)));
                }
                // Only the desktop's copy: the OFFERED event was published once.
                Effect::OfferRenewed { inquiry, agent, .. } => {
                    if let Some(renewed) = convert::open_offer(router, now, agent, inquiry) {
                        out.send(encode(encoding, s.assignments(agent), &renewed));
                    }
                }
                Effect::Withdraw { inquiry, agent, reason } => {
                    out.send(encode(encoding, s.assignments(agent), &convert::withdrawal(inquiry, agent, reason, now)));
                }
                Effect::Event(event) => out.send(encode(encoding, s.events(&event.shop), &convert::event(event))),
                Effect::Deflect { inquiry, shop, group, at, score } => {
                    if let Some(deflection) = deflection(encoding, s, router, now, inquiry, shop) {
                        out.send(deflection);
                    }
                    let event = proto::InquiryEvent {
                        inquiry_id: inquiry.to_string(),
                        shop_id: shop.to_string(),
                        kind: proto::inquiry_event::Kind::Deflected as i32,
                        group: group.to_string(),
                        at_ms: *at as i64,
                        score: *score,
                        detail: "handed to the self-service bot first".into(),
                        ..Default::default()
                    };
                    out.send(encode(encoding, s.events(shop), &event));
                }
                // Only the bot's copy: the DEFLECTED event went out with the original.
                Effect::DeflectionResent { inquiry, shop } => {
                    if let Some(deflection) = deflection(encoding, s, router, now, inquiry, shop) {
                        out.send(deflection);
                    }
                }
                Effect::LevelChanged(change) => {
                    let (from, to) = (change.from.name(), change.to.name());
                    tracing::info!(scope = %change.scope, from, to, reason = %change.reason, "load level changed");
                    out.send(encode(encoding, s.levels(), &convert::level_changed(change)))
                }
                Effect::AgentStatusChanged { agent, status, reason } => {
                    tracing::info!(agent_id = %crate::adapters::redact::Redacted(agent), ?status, reason, "agent status changed by the router");
                }
            }
        }
        if out.0.is_empty() {
            return None;
        }
        let queue = self.queue.clone();
        Some(Box::new(move || {
            for message in out.0 {
                if queue.send(message).is_err() {
                    tracing::warn!("NATS publisher has stopped; an outbound message was not sent");
                }
            }
        }))
    }
}

/// How long stopping waits for deflections not yet stored; the next start
/// publishes again every one never confirmed stored anyway.
const KEPT_WAIT_AT_STOP: Duration = Duration::from_secs(5);
/// Kept messages whose acknowledgements are awaited at once.
const KEPT_WINDOW: usize = 256;

/// Sends queued messages in order until the queue closes, then flushes.
/// Kept messages go to a task of their own that retries them until stored,
/// so a slow or missing stream holds up nothing else.
pub async fn run_publisher(
    client: async_nats::Client,
    settings: NatsSettings,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    engine: EngineHandle,
) {
    let js = async_nats::jetstream::new(client.clone());
    let (kept_tx, kept_rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    let mut kept = tokio::spawn(run_kept(js, settings, kept_rx, backlog.clone(), engine));
    while let Some(message) = queue.recv().await {
        if message.kept {
            backlog.fetch_add(1, Ordering::Relaxed);
            let _ = kept_tx.send(message);
            continue;
        }
        // Publishing only fails once the client is closed; async-nats buffers
        // across reconnects.
        if let Err(e) = client.publish_with_headers(message.subject, message.headers, message.payload).await {
            tracing::error!(error = %e, "could not publish an outbound message");
        }
    }
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush outbound messages at shutdown");
    }
    drop(kept_tx);
    if tokio::time::timeout(KEPT_WAIT_AT_STOP, &mut kept).await.is_err() {
        kept.abort();
        tracing::warn!(
            unstored = backlog.load(Ordering::Relaxed),
            "stopping with deflections not yet stored; the next start publishes them again"
        );
    }
}

/// Publishes kept messages through JetStream, in order, up to
/// [`KEPT_WINDOW`] awaiting their acknowledgement at once; what was not
/// stored is tried again, first, after a backoff, and a missing stream is
/// set up again (`setup_kept_streams`). What is stored is confirmed to the
/// engine. Ends when the queue is closed and everything is stored.
/// `backlog` counts the messages not yet stored.
async fn run_kept(
    js: async_nats::jetstream::Context,
    settings: NatsSettings,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    backlog: Arc<AtomicUsize>,
    engine: EngineHandle,
) {
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    let mut backoff = Duration::from_millis(200);
    loop {
        if pending.is_empty() {
            match queue.recv().await {
                Some(message) => pending.push_back(message),
                None => return,
            }
        }
        while let Ok(message) = queue.try_recv() {
            pending.push_back(message);
        }
        let window: Vec<Outgoing> = pending.drain(..pending.len().min(KEPT_WINDOW)).collect();
        let mut acks = Vec::with_capacity(window.len());
        for m in &window {
            acks.push(js.publish_with_headers(m.subject.clone(), m.headers.clone(), m.payload.clone()).await);
        }
        // Awaited together: each ack's timeout runs only while awaited.
        let stored = futures::future::join_all(acks.into_iter().map(|sent| async move {
            match sent {
                Ok(ack) => ack.await.map(|_| ()).map_err(async_nats::Error::from),
                Err(e) => Err(e.into()),
            }
        }))
        .await;
        let (mut failed, mut error) = (Vec::new(), None);
        for (message, stored) in window.into_iter().zip(stored) {
            match stored {
                Ok(()) => {
                    backlog.fetch_sub(1, Ordering::Relaxed);
                    if let Some(inquiry) = message.confirms {
                        confirm_stored(&engine, inquiry);
                    }
                }
                // One no stream will ever take: retrying would hold up the rest.
                Err(e) if too_large(&e) => {
                    backlog.fetch_sub(1, Ordering::Relaxed);
                    // Settled: no stream will ever take it, so no restart
                    // should try again.
                    if let Some(inquiry) = message.confirms.clone() {
                        confirm_stored(&engine, inquiry);
                    }
                    tracing::error!(error = %e, subject = %crate::adapters::redact::Redacted(&message.subject), "a deflection is too large for NATS; it is dropped");
                }
                Err(e) => {
                    error.get_or_insert(e);
                    failed.push(message);
                }
            }
        }
        let Some(e) = error else {
            backoff = Duration::from_millis(200);
            continue;
        };
        for message in failed.into_iter().rev() {
            pending.push_front(message);
        }
        // With a subscriber on the subject (a bot listening directly) a
        // missing stream shows as a timeout rather than as no responders.
        if super::inbound::stream_missing(&e) || super::stream_absent(&js, &settings.deflection_stream).await {
            tracing::error!(error = %e, "the deflection stream is gone; setting it up again");
            if let Err(e) = super::setup_kept_streams(&js, &settings).await {
                tracing::warn!(error = %e, "cannot set up the kept streams yet");
            }
        } else {
            let unstored = backlog.load(Ordering::Relaxed);
            tracing::warn!(error = %e, unstored, retry_in = ?backoff, "deflections are not stored yet; retrying");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Tells the engine a deflection is stored. Not waited for: a confirmation
/// lost (the engine stopping) only means one more copy after a restart.
fn confirm_stored(engine: &EngineHandle, inquiry: Id) {
    let command = Command::DeflectionStored { inquiry };
    if !engine.try_submit(command.clone()) {
        let engine = engine.clone();
        tokio::spawn(async move { engine.submit(command).await });
    }
}

/// Whether a publish failed because the message exceeds what NATS takes.
fn too_large(e: &async_nats::Error) -> bool {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    e.downcast_ref::<PublishError>().is_some_and(|e| e.kind() == PublishErrorKind::MaxPayloadExceeded)
}
