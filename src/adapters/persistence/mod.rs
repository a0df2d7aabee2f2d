//! Durable routing state: a journal stream and a key-value bucket.
//!
//! Every group of decisions is appended to the journal stream
//! (`JOURNAL_<bucket>`) as one message holding all the records it changed
//! ([`frame`]) before the decisions' effects go out. In the background the
//! latest value of each changed record is checkpointed into the bucket — one
//! key per inquiry (`inq.<id>`), per agent (`agent.<id>`) and one for levels
//! and overrides (`levels`), each the core's JSON record
//! (`crate::core::snapshot`) — then the key `checkpoint` records the journal
//! sequence the bucket now covers and the journal is purged up to it. So a
//! record that changes five times in a second costs the server one journal
//! share and one key write, not five key writes. At start [`StateStore::load`]
//! reads the bucket, replays the journal after the checkpoint over it, and the
//! core rebuilds itself from the result.
//!
//! * [`journal`] — the task that appends with group commit and retries, and
//!   hands changes to the checkpoints.
//! * [`frame`] — the journal's message format.
//! * `append` — appending a group commit where this router left the journal.
//! * `checkpoint` — writing a checkpoint: windows in flight, and their pace.
//! * [`lease`] — one router per bucket.

mod append;
mod checkpoint;
mod fit;
pub mod frame;
pub mod journal;
pub mod lease;
mod load;

pub use append::{Appended, ForeignWrite, StreamBehind};
pub use checkpoint::{Pace, CHECKPOINT_SPREAD};
pub use load::Loaded;

use crate::adapters::nats::{stream_absent, stream_not_found};
use crate::config::NatsSettings;
use crate::core::snapshot::Change;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why the state bucket could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the state bucket `{bucket}`: {detail}; the server must run JetStream (-js), 2.10.23 or newer, \
         and this user may create and use the bucket KV_{bucket} and the stream JOURNAL_{bucket} within the account's \
         JetStream limits"
    )]
    Open { bucket: String, detail: String },
    #[error(
        "cannot read the state bucket `{bucket}`: {detail}; check that this user may read KV_{bucket} and \
         JOURNAL_{bucket} (`nats stream info`)"
    )]
    Read { bucket: String, detail: String },
}

/// Header marking a deleted key (the KV protocol's own).
const KV_OPERATION: &str = "KV-Operation";

/// The bucket, the journal stream, and the JetStream context to write them with.
#[derive(Clone)]
pub struct StateStore {
    js: jetstream::Context,
    bucket: String,
    journal: String,
    journal_subject: String,
    settings: NatsSettings,
    /// Held while this router's lease is; writes wait on it (see [`lease`]).
    fence: Option<lease::Fence>,
    /// The bucket stream's last sequence as this router knows it (read at
    /// load, then written by its checkpoints; `UNKNOWN` until then): its
    /// next write must follow it (see `checkpoint`).
    bucket_last: Arc<AtomicU64>,
}

/// `StateStore::bucket_last` not known yet: read from the server at the next write.
const UNKNOWN: u64 = u64::MAX;

/// Sizes the journal keeps to (see [`StateStore::limits`]).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most bytes of one journal message.
    pub frame: usize,
    /// Most bytes of one stored inquiry record (see [`fit`]).
    pub record: usize,
}

/// One write: a key and its new value, or `None` to delete it.
pub type Write = (String, Option<Bytes>);

/// Key of the journal sequence the bucket covers.
const CHECKPOINT_KEY: &str = "checkpoint";

/// The journal sequence the bucket's checkpoint covers, if it has one (none
/// when the server has no bucket). An unanswered read is an error, never
/// "no marker": a journal created anew from a wrong sequence would hide
/// decisions from the next start.
async fn checkpoint_marker(js: &jetstream::Context, bucket: &str) -> Result<Option<u64>, async_nats::Error> {
    let stream = match js.get_stream(format!("KV_{bucket}")).await {
        Ok(stream) => stream,
        Err(e) if stream_not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let message = match stream.get_last_raw_message_by_subject(&format!("$KV.{bucket}.{CHECKPOINT_KEY}")).await {
        Ok(message) => message,
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(std::str::from_utf8(&message.payload).ok().and_then(|s| s.trim().parse().ok()))
}

/// Opens key-value bucket `bucket` (history 1, file storage), creating it
/// when absent.
async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(kv) = js.get_key_value(bucket).await {
        return Ok(kv);
    }
    let config = kv::Config {
        bucket: bucket.to_string(),
        description: description.into(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    Ok(js.create_key_value(config).await?)
}

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

/// The encoded value of a change (`None`: delete the key); an inquiry's
/// record is kept within `limit` bytes (see [`fit`]).
pub fn value_of(change: &Change, limit: usize) -> Option<Bytes> {
    fn json<T: serde::Serialize>(value: &T) -> Option<Bytes> {
        Some(serde_json::to_vec(value).expect("records always serialise").into())
    }
    match change {
        Change::Inquiry(r) => Some(fit::inquiry_json(r, limit)),
        Change::Forget(_) => None,
        Change::Agent(a) => json(a),
        Change::Levels(l) => json(l),
    }
}

/// Journal messages stay below this, or below the server's `max_payload`
/// less [`FRAME_MARGIN`] when that is smaller (the default is 1 MiB).
const FRAME_LIMIT: usize = 512 * 1024;
/// Room for the message's subject and protocol overhead.
const FRAME_MARGIN: usize = 4 * 1024;
/// Room in a message for one record's key and the message header.
const RECORD_MARGIN: usize = 1024;

/// Most writes whose acknowledgements are awaited at once. The JetStream
/// context lends 5,000 ack permits and a publish waits for a free one, so a
/// group larger than that must not hold all its acks before awaiting any.
const ACK_WINDOW: usize = 2_048;

impl StateStore {
    /// Opens the bucket named in `settings` and its journal, creating them when absent.
    pub async fn open(js: jetstream::Context, settings: &NatsSettings) -> Result<StateStore, StoreError> {
        StateStore::create(js, settings, None).await
    }

    /// [`StateStore::open`]; a journal created anew starts at `first_seq`.
    async fn create(
        js: jetstream::Context,
        settings: &NatsSettings,
        first_seq: Option<u64>,
    ) -> Result<StateStore, StoreError> {
        let bucket = settings.state_bucket.clone();
        let open_error = |e: &dyn std::fmt::Display| StoreError::Open { bucket: bucket.clone(), detail: e.to_string() };
        open_bucket(&js, &bucket, "ticket-router routing state", settings.replicas)
            .await
            .map_err(|e| open_error(&e))?;
        let journal = format!("JOURNAL_{bucket}");
        let journal_subject = format!("ticket_router.journal.{bucket}");
        // A journal created while the bucket holds a checkpoint marker starts
        // after it: messages at or below the marker are skipped at load.
        let first_seq = match first_seq {
            Some(seq) => Some(seq),
            None => match js.get_stream(&journal).await {
                Ok(_) => None,
                Err(e) if stream_not_found(&e) => {
                    let marker = checkpoint_marker(&js, &bucket).await.map_err(|e| open_error(&e))?;
                    if let Some(marker) = marker {
                        tracing::warn!(
                            journal = %journal,
                            checkpoint = marker,
                            "the journal is missing while the bucket holds a checkpoint: decisions recorded after \
                             it, if any, are lost (a wiped or deleted stream?); creating it again"
                        );
                    }
                    marker.map(|m| m + 1)
                }
                Err(e) => return Err(open_error(&e)),
            },
        };
        let config = stream::Config {
            name: journal.clone(),
            description: Some(format!("ticket-router decisions not yet checkpointed into `{bucket}`")),
            subjects: vec![journal_subject.clone()],
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            first_sequence: first_seq,
            ..Default::default()
        };
        js.create_or_update_stream(config).await.map_err(|e| open_error(&e))?;
        let bucket_last = Arc::new(AtomicU64::new(UNKNOWN));
        Ok(StateStore { js, bucket, journal, journal_subject, settings: settings.clone(), fence: None, bucket_last })
    }

    /// Reads where the bucket stands again at the next checkpoint write
    /// (after the server lost some of it).
    fn forget_bucket_position(&self) {
        self.bucket_last.store(UNKNOWN, Ordering::Release);
    }

    /// This store, writing only while `fence` says the lease is held.
    pub fn fenced(self, fence: lease::Fence) -> StateStore {
        StateStore { fence: Some(fence), ..self }
    }

    async fn lease_held(&self) {
        if let Some(fence) = &self.fence {
            fence.held().await;
        }
    }

    /// How large journal messages and inquiry records may be: 512 KiB a
    /// message, less on a server whose `max_payload` is smaller (read once
    /// per group commit: the server's info is copied on every read).
    pub fn limits(&self) -> Limits {
        let frame = match self.js.client().server_info().max_payload {
            0 => FRAME_LIMIT,
            max => FRAME_LIMIT.min(max.saturating_sub(FRAME_MARGIN)),
        };
        Limits { frame, record: frame.saturating_sub(RECORD_MARGIN) }
    }

    /// The last journal sequence recorded: the journal's last message, or the
    /// bucket's checkpoint marker if that is later (0 when the server has
    /// neither); an error when the server does not answer.
    pub async fn last_recorded(&self) -> Result<u64, async_nats::Error> {
        let journal = match self.js.get_stream(&self.journal).await {
            Ok(mut stream) => stream.info().await?.state.last_sequence,
            Err(e) if stream_not_found(&e) => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(journal.max(checkpoint_marker(&self.js, &self.bucket).await?.unwrap_or(0)))
    }

    /// After a failed write: if the server no longer has the journal or the
    /// bucket (a lost store, an operator's delete), creates them again so
    /// that deciding goes on; true when it did. `next_seq` is the journal
    /// sequence after the last one appended. What they held is gone from the
    /// server: the caller records everything the router holds again.
    /// `on_loss` is told whether the journal was lost (it starts anew at
    /// `next_seq`).
    pub async fn recreate_if_lost(&self, next_seq: u64, on_loss: impl FnOnce(bool)) -> bool {
        let journal_lost = stream_absent(&self.js, &self.journal).await;
        let bucket_lost = stream_absent(&self.js, &format!("KV_{}", self.bucket)).await;
        if !(journal_lost || bucket_lost) {
            return false;
        }
        if bucket_lost {
            // A bucket created anew numbers its writes from its own start.
            self.forget_bucket_position();
        }
        // Counted before anything is created: were the creation to fail
        // half-way, the next attempt would find the streams and not know.
        on_loss(journal_lost);
        tracing::error!(
            journal_lost,
            bucket_lost,
            bucket = %self.bucket,
            "the state bucket or its journal is gone from the server; creating them again and recording \
             every record the router holds"
        );
        // A new journal goes on from the old one's sequence, so that a
        // checkpoint marker still in the bucket does not hide its messages.
        let first_seq = journal_lost.then_some(next_seq);
        if let Err(e) = StateStore::create(self.js.clone(), &self.settings, first_seq).await {
            tracing::warn!(error = %e, "cannot create the state bucket and journal again yet");
        }
        true
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
