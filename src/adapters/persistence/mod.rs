//! Durable routing state in a JetStream key-value bucket.
//!
//! One key per inquiry (`inq.<id>`), per agent (`agent.<id>`) and one for
//! levels and overrides (`levels`), each holding the core's JSON record
//! (`crate::core::snapshot`). The [`journal`] writes every command's changes
//! before the command's effects go out; at start [`StateStore::load`] reads
//! the last value of every key and the core rebuilds itself from them.
//!
//! * [`journal`] — the task that writes batches with group commit and retries.

pub mod journal;

use crate::config::NatsSettings;
use crate::core::snapshot::{Change, Restored};
use async_nats::jetstream::{self, consumer, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;

/// Why the state bucket could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state bucket `{bucket}`: {detail}; the server must run JetStream (-js), 2.10.23 or newer"
    )]
    Open { bucket: String, detail: String },
    #[error("cannot read the state bucket `{bucket}`: {detail}")]
    Read { bucket: String, detail: String },
}

/// Header marking a deleted key (the KV protocol's own).
const KV_OPERATION: &str = "KV-Operation";

/// The bucket and the JetStream context to write it with.
#[derive(Clone)]
pub struct StateStore {
    js: jetstream::Context,
    bucket: String,
}

/// One write: a key and its new value, or `None` to delete it.
pub type Write = (String, Option<Bytes>);

/// Escapes an id into a key token: `[A-Za-z0-9_-]` stay, anything else is `=XX`.
pub fn key_token(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The key a change is recorded under.
pub fn key_of(change: &Change) -> String {
    match change {
        Change::Inquiry(r) => format!("inq.{}", key_token(&r.inquiry.id)),
        Change::Forget(id) => format!("inq.{}", key_token(id)),
        Change::Agent(a) => format!("agent.{}", key_token(&a.id)),
        Change::Levels(_) => "levels".to_string(),
    }
}

/// The encoded value of a change (`None`: delete the key).
pub fn value_of(change: &Change) -> Option<Bytes> {
    fn json<T: serde::Serialize>(value: &T) -> Option<Bytes> {
        Some(serde_json::to_vec(value).expect("records always serialise").into())
    }
    match change {
        Change::Inquiry(r) => json(r.as_ref()),
        Change::Forget(_) => None,
        Change::Agent(a) => json(a),
        Change::Levels(l) => json(l),
    }
}

/// Most writes whose acknowledgements are awaited at once. The JetStream
/// context lends 5,000 ack permits and a publish waits for a free one, so a
/// group larger than that must not hold all its acks before awaiting any.
const ACK_WINDOW: usize = 2_048;

impl StateStore {
    /// Opens the bucket named in `settings`, creating it when absent.
    pub async fn open(js: jetstream::Context, settings: &NatsSettings) -> Result<StateStore, StoreError> {
        let bucket = settings.state_bucket.clone();
        if js.get_key_value(&bucket).await.is_err() {
            let config = kv::Config {
                bucket: bucket.clone(),
                description: "ticket-router routing state".into(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: settings.replicas,
                ..Default::default()
            };
            js.create_key_value(config)
                .await
                .map_err(|e| StoreError::Open { bucket: bucket.clone(), detail: e.to_string() })?;
        }
        Ok(StateStore { js, bucket })
    }

    /// Publishes every write and waits until the server has stored them all,
    /// at most [`ACK_WINDOW`] acknowledgements outstanding at a time.
    pub async fn write(&self, writes: &[Write]) -> Result<(), async_nats::Error> {
        for window in writes.chunks(ACK_WINDOW) {
            self.write_window(window).await?;
        }
        Ok(())
    }

    async fn write_window(&self, writes: &[Write]) -> Result<(), async_nats::Error> {
        let mut acks = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            let subject = format!("$KV.{}.{key}", self.bucket);
            let ack = match value {
                Some(bytes) => self.js.publish(subject, bytes.clone()).await?,
                None => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert(KV_OPERATION, "DEL");
                    self.js.publish_with_headers(subject, headers, Bytes::new()).await?
                }
            };
            acks.push(ack);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    /// Reads the last value of every key.
    pub async fn load(&self) -> Result<Restored, StoreError> {
        let read_error =
            |e: &dyn std::fmt::Display| StoreError::Read { bucket: self.bucket.clone(), detail: e.to_string() };
        let mut stream = self.js.get_stream(format!("KV_{}", self.bucket)).await.map_err(|e| read_error(&e))?;
        let mut restored = Restored::default();
        if stream.info().await.map_err(|e| read_error(&e))?.state.messages == 0 {
            return Ok(restored);
        }
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                filter_subject: format!("$KV.{}.>", self.bucket),
                ..Default::default()
            })
            .await
            .map_err(|e| read_error(&e))?;
        let mut messages = consumer.messages().await.map_err(|e| read_error(&e))?;
        let prefix = format!("$KV.{}.", self.bucket);
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
            let message = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(read_error(&e)),
                Ok(None) => break,
                Err(_) => return Err(read_error(&"no answer from the server for 30 s")),
            };
            let pending = message.info().map(|i| i.pending).map_err(|e| read_error(&e))?;
            let deleted = message.headers.as_ref().is_some_and(|h| h.get(KV_OPERATION).is_some());
            if !deleted {
                let key = message.subject.strip_prefix(prefix.as_str()).unwrap_or_default();
                decode_into(&mut restored, key, &message.payload);
            }
            if pending == 0 {
                break;
            }
        }
        Ok(restored)
    }
}

/// Adds one stored record to `restored`; an unreadable one is logged and skipped.
fn decode_into(restored: &mut Restored, key: &str, payload: &[u8]) {
    let result = if key.starts_with("inq.") {
        serde_json::from_slice(payload).map(|r| restored.inquiries.push(r))
    } else if key.starts_with("agent.") {
        serde_json::from_slice(payload).map(|a| restored.agents.push(a))
    } else if key == "levels" {
        serde_json::from_slice(payload).map(|l| restored.levels = Some(l))
    } else {
        Ok(())
    };
    if let Err(e) = result {
        tracing::error!(key, error = %e, "a stored record cannot be read; it is skipped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_safe_key_tokens() {
        assert_eq!(key_token("order:123.a"), "order=3A123=2Ea");
        assert_eq!(key_token("Ab_9-x"), "Ab_9-x");
    }
}
