//! Reading the recorded state at start: the bucket's latest values, then
//! the journal after its checkpoint, group commit by group commit, with a
//! report of what the server lost.

use super::{frame, StateStore, StoreError, Write, CHECKPOINT_KEY, KV_OPERATION};
use crate::core::snapshot::Restored;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// What a start read from the server.
pub struct Loaded {
    pub restored: Restored,
    /// The latest value of every key the journal held (not yet in the bucket).
    pub replayed: Vec<Write>,
    /// Journal sequences the server lost that the bucket does not cover.
    pub lost: Option<(u64, u64)>,
    /// The journal's last sequence as read: this router's appends must
    /// follow it (see `append`).
    pub journal_last: u64,
}

impl StateStore {
    /// Reads the recorded state: the bucket, then the journal after its checkpoint.
    pub async fn load(&self) -> Result<Restored, StoreError> {
        Ok(self.load_with_journal().await?.restored)
    }

    /// [`StateStore::load`], with the latest value of every key the journal
    /// held: the bucket lacks those, so the next checkpoint must write them
    /// before it lets the journal go (see [`super::journal::run`]).
    pub async fn load_with_journal(&self) -> Result<Loaded, StoreError> {
        let read_error =
            |e: &dyn std::fmt::Display| StoreError::Read { bucket: self.bucket.clone(), detail: e.to_string() };
        let mut latest: HashMap<String, Bytes> = HashMap::new();
        let mut through = 0;
        let prefix = format!("$KV.{}.", self.bucket);
        let bucket = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            filter_subject: format!("{prefix}>"),
            ..Default::default()
        };
        let kv = format!("KV_{}", self.bucket);
        let bucket_state = self.js.get_stream(&kv).await.map_err(|e| read_error(&e))?.cached_info().state.clone();
        let mut bucket_last = bucket_state.last_sequence;
        read_stream(&self.js, &kv, bucket, 0, |message| {
            let seq = message.info().map_or(0, |i| i.stream_sequence);
            bucket_last = bucket_last.max(seq);
            let key = message.subject.strip_prefix(prefix.as_str()).unwrap_or_default();
            if message.headers.as_ref().is_some_and(|h| h.get(KV_OPERATION).is_some()) {
                latest.remove(key);
            } else if key == CHECKPOINT_KEY {
                through = std::str::from_utf8(&message.payload).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            } else {
                latest.insert(key.to_string(), message.payload.clone());
            }
        })
        .await
        .map_err(|e| read_error(&e))?;
        // This router's checkpoints go on right after what it read.
        self.bucket_last.store(bucket_last, std::sync::atomic::Ordering::Release);
        let journal = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: through + 1 },
            ..Default::default()
        };
        let mut frames = 0;
        let mut groups = frame::Groups::default();
        let mut from_journal: HashMap<String, Option<Bytes>> = HashMap::new();
        let mut first_seq = None;
        let mut last_read = 0;
        // An empty journal whose sequence went on past the checkpoint lost
        // (or had purged) what came after it.
        let state = self.js.get_stream(&self.journal).await.map_err(|e| read_error(&e))?.cached_info().state.clone();
        let emptied = (state.messages == 0 && state.last_sequence > through).then_some(state.last_sequence + 1);
        read_stream(&self.js, &self.journal, journal, through, |message| {
            frames += 1;
            let seq = message.info().ok().map(|i| i.stream_sequence);
            first_seq = first_seq.or(seq);
            last_read = last_read.max(seq.unwrap_or(0));
            match frame::decode(message.payload.clone()) {
                Ok(frame) => groups.push(frame).into_iter().for_each(|writes| {
                    from_journal.extend(writes.iter().cloned());
                    replay(&mut latest, writes);
                }),
                Err(e) => tracing::error!(error = %e, "a journal message cannot be read; it is skipped"),
            }
        })
        .await
        .map_err(|e| read_error(&e))?;
        groups.finish();
        // The journal goes on right after what the bucket covers, unless the
        // server lost messages in between; a snapshot the router appended
        // after such a loss makes up for them.
        let lost = first_seq
            .or(emptied)
            .filter(|&first| first > through + 1 && !groups.snapshot)
            .map(|first| (through + 1, first - 1));
        if let Some((_, last)) = lost {
            let first = last + 1;
            tracing::error!(
                checkpoint = through,
                journal_starts_at = first,
                "the server lost journal messages the bucket does not cover (a wiped or purged store?); \
                 decisions recorded only there are missing from the restored state: check inquiries \
                 published just before, and their publishers' logs"
            );
        }
        if groups.dropped > 0 {
            tracing::info!(
                messages = groups.dropped,
                "skipped journal messages of a group commit that never finished (the router stopped while \
                 recording it; nothing of it was announced)"
            );
        }
        tracing::debug!(keys = latest.len(), checkpoint = through, journal_messages = frames, "recorded state read");
        let mut restored = Restored::default();
        for (key, payload) in &latest {
            decode_into(&mut restored, key, payload);
        }
        // Whatever came in while reading was read too: the reading goes on
        // until nothing is pending.
        let journal_last = state.last_sequence.max(last_read);
        Ok(Loaded { restored, replayed: from_journal.into_iter().collect(), lost, journal_last })
    }
}

/// Applies journal writes over the values read so far.
fn replay(latest: &mut HashMap<String, Bytes>, writes: Vec<Write>) {
    for (key, value) in writes {
        match value {
            Some(v) => latest.insert(key, v),
            None => latest.remove(&key),
        };
    }
}

/// Delivers every message of `stream` the consumer selects, if the stream
/// holds any after sequence `after`.
async fn read_stream(
    js: &jetstream::Context,
    stream: &str,
    config: consumer::pull::OrderedConfig,
    after: u64,
    mut each: impl FnMut(&jetstream::Message),
) -> Result<(), String> {
    let mut stream = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let state = stream.info().await.map_err(|e| e.to_string())?.state.clone();
    if state.messages == 0 || state.last_sequence <= after {
        return Ok(());
    }
    let consumer = stream.create_consumer(config).await.map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
        let message = match next {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(None) => return Ok(()),
            Err(_) => return Err("no answer from the server for 30 s".into()),
        };
        each(&message);
        if message.info().map_err(|e| e.to_string())?.pending == 0 {
            return Ok(());
        }
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
        let (key, error) = (crate::adapters::redact::Redacted(key), e.to_string());
        tracing::error!(%key, error = %crate::adapters::redact::Redacted(&error), "a stored record cannot be read; it is skipped");
    }
}
