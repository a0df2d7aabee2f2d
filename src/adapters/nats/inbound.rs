//! The inbound loop: each message from the durable consumer is decoded,
//! handed to the engine, and then acknowledged — or dead-lettered with its
//! original bytes and a `Ticket-Router-Error` header, then acknowledged.
//! A message is only left unacknowledged (and so redelivered) when the router
//! could not take a decision about it.

use super::Subjects;
use crate::adapters::codec::{self, RejectReason, Rejection};
use crate::adapters::engine::{now_ms, EngineError, EngineHandle};
use crate::adapters::metrics::{self, Outcome};
use crate::core::{Command, CoreError};
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::Message as JsMessage;
use async_nats::HeaderMap;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Header naming why a message was dead-lettered.
pub const ERROR_HEADER: &str = "Ticket-Router-Error";
/// Header carrying the subject a dead-lettered message was published on.
pub const SUBJECT_HEADER: &str = "Ticket-Router-Subject";

/// What became of one inbound message.
#[derive(Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The core decided; acknowledge.
    Decided,
    /// A duplicate or a no-op (cancelling a finished inquiry); acknowledge.
    Ignored,
    /// Bad input: dead-letter, then acknowledge.
    Rejected(Rejection),
    /// No decision was taken (router stopping): leave it for redelivery.
    Retry,
}

/// Decodes one message into a command for the core; `received_at`, when
/// known, is when the stream stored it (the customer's wait starts there).
pub fn command_for(
    subjects: &Subjects,
    subject: &str,
    headers: Option<&HeaderMap>,
    body: &[u8],
    received_at: Option<crate::core::Millis>,
) -> Result<Command, Rejection> {
    let content_type = headers.and_then(content_type).map(|v| v.as_str());
    let format = codec::format_of(content_type);
    let prefix = &subjects.prefix;
    if is_cancellation(subjects, subject) {
        let shop = codec::shop_of_subject(subject, prefix, "cancellations")?;
        let id = codec::decode_cancellation(format, body)?;
        return Ok(Command::Cancel { inquiry: id.into(), shop: Some(shop.into()) });
    }
    let shop = codec::shop_of_subject(subject, prefix, "inquiries")?;
    let inquiry = Box::new(codec::decode_inquiry(shop, format, body, now_ms())?);
    Ok(match received_at {
        Some(received_at) => Command::ArriveReceived { inquiry, received_at },
        None => Command::Arrive(inquiry),
    })
}

/// Whether a message came on the cancellation subjects (not an inquiry).
fn is_cancellation(subjects: &Subjects, subject: &str) -> bool {
    // Per message: compared in place rather than through a formatted string.
    subject.strip_prefix(subjects.prefix.as_str()).is_some_and(|rest| rest.starts_with(".cancellations"))
}

/// What `ticket_router_inquiries_total` counts for an answer. A repeat that
/// comes as a redelivery is the same stream message again (its first
/// delivery was decided but not yet acknowledged), not a publisher's repeat.
fn counted_outcome(arrival: bool, redelivered: bool, outcome: &Result<(), EngineError>) -> Option<Outcome> {
    match outcome {
        Ok(()) if arrival => Some(Outcome::Received),
        Err(EngineError::Core(CoreError::Duplicate(_))) if !redelivered => Some(Outcome::Duplicate),
        _ => None,
    }
}

/// What the engine's answer means for the message (`arrival`: it was an
/// inquiry; `redelivered`: JetStream delivered this message before).
fn classify(arrival: bool, redelivered: bool, outcome: Result<(), EngineError>) -> Disposition {
    if let Some(counted) = counted_outcome(arrival, redelivered, &outcome) {
        metrics::count(counted);
    }
    match outcome {
        Ok(()) => Disposition::Decided,
        Err(EngineError::Core(CoreError::Duplicate(_))) => Disposition::Ignored,
        // The customer left after the chat ended: a normal race, nothing to undo.
        Err(EngineError::Core(CoreError::AlreadyFinished(id, state))) => {
            tracing::debug!(inquiry_id = %crate::adapters::redact::Redacted(&id), state = state.name(), "cancellation of a finished inquiry; nothing to do");
            Disposition::Ignored
        }
        Err(EngineError::Core(CoreError::UnknownInquiry(id))) => Disposition::Rejected(Rejection {
            reason: RejectReason::UnknownInquiry,
            message: format!(
                "no inquiry `{id}` is known: it was never published here, or it finished longer ago than \
                 agents.retain_finished and was forgotten; cancel only inquiries that were published"
            ),
        }),
        Err(EngineError::Core(e)) => {
            Disposition::Rejected(Rejection { reason: RejectReason::InvalidField, message: e.to_string() })
        }
        Err(EngineError::Stopped) => Disposition::Retry,
    }
}

/// The `Content-Type` header, however its name is written: NATS header
/// names are case-sensitive, and HTTP habits write `content-type`.
fn content_type(headers: &HeaderMap) -> Option<&async_nats::HeaderValue> {
    headers.get("Content-Type").or_else(|| {
        let mut named =
            headers.iter().filter(|(name, _)| AsRef::<str>::as_ref(*name).eq_ignore_ascii_case("content-type"));
        named.next().and_then(|(_, values)| values.first())
    })
}

/// One-line header value (NATS headers cannot hold line breaks).
fn header_value(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(1000).collect()
}

/// Publishes a rejected message to the dead-letter subject and waits until
/// the dead-letter stream has stored it, so acknowledging the original
/// cannot lose it. `origin` (the inbound stream, sequence and time stored) is its
/// `Nats-Msg-Id`: should the acknowledgement be lost and the message come
/// again, the dead-letter stream drops the second copy.
pub async fn dead_letter(
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    subject: &str,
    headers: Option<&HeaderMap>,
    body: bytes::Bytes,
    rejection: &Rejection,
    origin: Option<&str>,
) -> Result<(), async_nats::Error> {
    let mut out = HeaderMap::new();
    if let Some(origin) = origin {
        out.insert("Nats-Msg-Id", origin);
    }
    if let Some(ct) = headers.and_then(content_type) {
        out.insert("Content-Type", ct.as_str());
    }
    out.insert(ERROR_HEADER, header_value(&rejection.to_string()).as_str());
    out.insert(SUBJECT_HEADER, header_value(subject).as_str());
    let ack = match js.publish_with_headers(subjects.deadletter(), out.clone(), body.clone()).await {
        // A message just under the server's limit goes over it with these
        // headers: rather than redeliver it forever, keep its beginning.
        Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded && body.len() > TRUNCATED_TO => {
            tracing::warn!(
                bytes = body.len(),
                kept = TRUNCATED_TO,
                "dead-lettering only the beginning of a message at the server's size limit"
            );
            out.insert(TRUNCATED_HEADER, body.len().to_string().as_str());
            js.publish_with_headers(subjects.deadletter(), out, body.slice(..TRUNCATED_TO)).await?
        }
        other => other?,
    };
    ack.await?;
    Ok(())
}

/// Header of a dead letter cut to its first [`TRUNCATED_TO`] bytes: the
/// original length.
pub const TRUNCATED_HEADER: &str = "Ticket-Router-Truncated";
/// What is kept of a message too large to dead-letter whole (the inbound limit).
const TRUNCATED_TO: usize = codec::MAX_PAYLOAD;

/// Messages handed to the engine whose answers are awaited at once.
const IN_FLIGHT: usize = 512;

type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = (JsMessage, Disposition)> + Send>>;

/// Consumes until `shutdown`, keeping up to [`IN_FLIGHT`] messages in the
/// engine at once and finishing them in order; those in hand at shutdown are
/// finished first.
pub async fn run(
    consumer: PullConsumer,
    js: async_nats::jetstream::Context,
    engine: EngineHandle,
    subjects: Subjects,
    deadletter_stream: &str,
    shutdown: CancellationToken,
) -> Result<(), async_nats::Error> {
    let mut messages = std::pin::pin!(consumer.messages().await?.take_until(shutdown.cancelled_owned()));
    let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut open = true;
    let mut lost: Option<async_nats::Error> = None;
    while open || !in_flight.is_empty() {
        tokio::select! {
            next = messages.next(), if open && in_flight.len() < IN_FLIGHT => match next {
                Some(Ok(message)) => in_flight.push_back(admit(&engine, &subjects, message).await),
                // The stream or the consumer is gone (a server that lost its
                // store, an operator's delete): finish what is in hand, then
                // let the caller set both up again instead of pulling forever.
                Some(Err(e)) if matches!(e.kind(), MessagesErrorKind::NoResponders | MessagesErrorKind::ConsumerDeleted) => {
                    tracing::error!(error = %e, "the inbound stream or consumer is gone; setting them up again");
                    lost = Some(e.into());
                    open = false;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "error from the inbound consumer; continuing"),
                None => open = false,
            },
            Some((message, disposition)) = in_flight.next() => match finish(&js, &subjects, deadletter_stream, message, disposition).await {
                Finished::Next => {}
                Finished::Stopping => return Ok(()),
                // The dead-letter stream is gone: setting up again creates
                // it; the message comes back after its ack wait.
                Finished::DeadLetterFailed(e) => {
                    if lost.is_none() {
                        lost = Some(e);
                    }
                    open = false;
                }
            },
        }
    }
    lost.map_or(Ok(()), Err)
}

/// Decodes a message and, when it is usable, queues its command in the
/// engine now (keeping the order) with the answer to await later.
async fn admit(engine: &EngineHandle, subjects: &Subjects, message: JsMessage) -> InFlight {
    let info = message.info().ok();
    let stored = info.as_ref().map(|info| (info.published.unix_timestamp_nanos() / 1_000_000).max(0) as u64);
    let redelivered = info.is_some_and(|info| info.delivered > 1);
    match command_for(subjects, &message.subject, message.headers.as_ref(), &message.payload, stored) {
        Err(rejection) => Box::pin(async move { (message, Disposition::Rejected(rejection)) }),
        Ok(command) => {
            let arrival = matches!(command, Command::Arrive(_) | Command::ArriveReceived { .. });
            match engine.start(command).await {
                Ok(pending) => Box::pin(async move {
                    let outcome = pending.outcome().await;
                    (message, classify(arrival, redelivered, outcome))
                }),
                Err(e) => Box::pin(async move { (message, classify(arrival, redelivered, Err(e))) }),
            }
        }
    }
}

/// What finishing a message means for consumption.
enum Finished {
    Next,
    /// The router is stopping: consume no more.
    Stopping,
    /// The dead-letter stream is gone: the message is left unacknowledged.
    DeadLetterFailed(async_nats::Error),
}

/// Acknowledges, dead-letters or leaves a message.
async fn finish(
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    deadletter_stream: &str,
    message: JsMessage,
    disposition: Disposition,
) -> Finished {
    match disposition {
        Disposition::Decided | Disposition::Ignored => ack(&message).await,
        Disposition::Rejected(rejection) => {
            tracing::warn!(subject = %crate::adapters::redact::Redacted(&message.subject), reason = rejection.reason.as_str(), "inbound message dead-lettered");
            // With the time it was stored: a stream set up again numbers from 1.
            let origin = message
                .info()
                .ok()
                .map(|i| format!("{}.{}.{}", i.stream, i.stream_sequence, i.published.unix_timestamp_nanos()));
            let sent = dead_letter(
                js,
                subjects,
                &message.subject,
                message.headers.as_ref(),
                message.payload.clone(),
                &rejection,
                origin.as_deref(),
            )
            .await;
            match sent {
                Ok(()) => {
                    let cancellation = is_cancellation(subjects, &message.subject);
                    metrics::count_deadletter(rejection.reason, !cancellation);
                    ack(&message).await;
                }
                // Only a missing stream is mended by setting up again; any
                // other failure leaves the message to its redelivery. With a
                // subscriber on the subject (someone watching dead letters) a
                // missing stream shows as a timeout rather than as no responders.
                Err(e)
                    if stream_missing(&e) || (timed_out(&e) && super::stream_absent(js, deadletter_stream).await) =>
                {
                    metrics::count_deadletter_failure();
                    tracing::error!(error = %e, "the dead-letter stream is gone; setting the streams up again, and the message will be redelivered");
                    return Finished::DeadLetterFailed(e);
                }
                Err(e) => {
                    metrics::count_deadletter_failure();
                    tracing::error!(error = %e, "could not dead-letter a message; it will be redelivered. Check the limits \
                        of the dead-letter stream (`nats stream info` on nats.deadletter_stream) and JetStream's storage");
                }
            }
        }
        Disposition::Retry => return Finished::Stopping,
    }
    Finished::Next
}

/// Whether a JetStream publish got no acknowledgement in time.
fn timed_out(e: &async_nats::Error) -> bool {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    e.downcast_ref::<PublishError>().is_some_and(|e| e.kind() == PublishErrorKind::TimedOut)
}

/// Whether a JetStream publish failed because no stream takes its subject.
pub(crate) fn stream_missing(e: &async_nats::Error) -> bool {
    use async_nats::jetstream::context::{PublishError, PublishErrorKind};
    e.downcast_ref::<PublishError>().is_some_and(|e| e.kind() == PublishErrorKind::StreamNotFound)
}

async fn ack(message: &JsMessage) {
    if let Err(e) = message.ack().await {
        tracing::warn!(error = %e, "could not acknowledge an inbound message; it may be redelivered (recognised then, not routed twice)");
    }
}

#[cfg(test)]
#[test]
fn a_redelivered_repeat_is_not_counted_as_a_publishers_duplicate() {
    let duplicate = || Err(EngineError::Core(CoreError::Duplicate("q1".into())));
    assert_eq!(counted_outcome(true, false, &duplicate()), Some(Outcome::Duplicate));
    assert_eq!(counted_outcome(true, true, &duplicate()), None);
    assert_eq!(counted_outcome(true, true, &Ok(())), Some(Outcome::Received), "decided for the first time");
    assert_eq!(counted_outcome(false, false, &Ok(())), None, "a cancellation is no inquiry");
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_content_type_header_is_found_however_its_name_is_written() {
        let subjects = Subjects::new("support");
        let wire = crate::proto::Inquiry {
            id: "q1".into(),
            category: crate::proto::Category::Order as i32,
            ..Default::default()
        };
        let body = wire.encode_to_vec();
        for name in ["Content-Type", "content-type", "CONTENT-TYPE"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, "application/protobuf");
            let command = command_for(&subjects, "support.inquiries.shop-1", Some(&headers), &body, None);
            assert!(matches!(command, Ok(Command::Arrive(q)) if q.id == "q1"), "{name}");
        }
        // Without one, the protobuf body is read as JSON, and refused.
        assert!(command_for(&subjects, "support.inquiries.shop-1", None, &body, None).is_err());
    }
}
