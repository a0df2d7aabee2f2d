//! The journal task: appends the changes of each group of batches to the
//! journal stream, then completes the batches in order (their effects go out,
//! callers are answered, inbound messages get acknowledged). Meanwhile,
//! checkpoints carry the latest value of every changed key into the bucket.
//!
//! Batches that queue up while an append is in flight are appended together
//! (group commit), with repeated keys written once. A failed append is
//! retried with backoff until it succeeds — a decision is never dropped;
//! while NATS is away, decisions wait here and nothing is announced that is
//! not recorded. Checkpoints only shorten recovery: a failed one is retried,
//! and until it succeeds the journal simply keeps more.

use super::{frame, key_of, value_of, StateStore, Write};
use crate::adapters::engine::{Batch, EngineHandle};
use crate::core::snapshot::Change;
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most batches appended in one group commit.
const MAX_GROUP: usize = 1024;
/// A checkpoint starts at least this often while changes come in...
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ...or as soon as this many keys changed since the last one.
const CHECKPOINT_KEYS: usize = 50_000;
/// Journal messages stay below this (the server's default `max_payload` is 1 MiB).
const FRAME_LIMIT: usize = 512 * 1024;
/// How long stopping waits for the last checkpoint; the journal holds
/// everything anyway, the checkpoint only makes the next start quicker.
const LAST_CHECKPOINT_WAIT: Duration = Duration::from_secs(5);

/// Keys changed since the last checkpoint started, with their latest value,
/// and the journal sequence that holds them.
#[derive(Default)]
struct Unchecked {
    latest: HashMap<String, Option<Bytes>>,
    through: u64,
}

impl Unchecked {
    fn add(&mut self, writes: Vec<Write>, through: u64) {
        self.latest.extend(writes);
        self.through = through;
    }

    fn take(&mut self) -> (Vec<Write>, u64) {
        (std::mem::take(&mut self.latest).into_iter().collect(), self.through)
    }
}

/// Runs until every sender is gone and the queue is empty. `engine` is asked
/// for every record when the server lost the bucket or the journal.
pub async fn run(store: StateStore, mut batches: mpsc::UnboundedReceiver<Batch>, engine: EngineHandle) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    // Where the journal stands, so that one created anew after a loss goes
    // on from there even before this run has appended anything.
    let mut unchecked = Unchecked { through: store.last_recorded().await, ..Unchecked::default() };
    let mut checkpoint: Option<JoinHandle<()>> = None;
    // Set when the server had lost the bucket or the journal and they were
    // created again: everything the router holds is then recorded anew.
    let lost = Arc::new(AtomicBool::new(false));
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let first = tokio::select! {
            first = batches.recv() => first,
            _ = ticks.tick() => {
                if lost.swap(false, Ordering::Relaxed) {
                    record_everything(&engine, &mut unchecked).await;
                }
                start_checkpoint(&store, &mut unchecked, &mut checkpoint, &lost);
                continue;
            }
        };
        let Some(first) = first else { break };
        group.push(first);
        while group.len() < MAX_GROUP {
            match batches.try_recv() {
                Ok(batch) => group.push(batch),
                Err(_) => break,
            }
        }
        let writes = coalesce(&mut group);
        if !writes.is_empty() {
            let frames = frame::encode(&writes, FRAME_LIMIT);
            let next_seq = unchecked.through + 1;
            let through = until_done("cannot record routing state", || async {
                mend_if_lost(&store, store.append(&frames).await, next_seq, &lost).await
            })
            .await;
            unchecked.add(writes, through);
        }
        if lost.swap(false, Ordering::Relaxed) {
            record_everything(&engine, &mut unchecked).await;
        }
        for batch in group.drain(..) {
            batch.complete();
        }
        if unchecked.latest.len() >= CHECKPOINT_KEYS {
            start_checkpoint(&store, &mut unchecked, &mut checkpoint, &lost);
        }
    }
    let last = async {
        if let Some(running) = checkpoint.take() {
            let _ = running.await;
        }
        start_checkpoint(&store, &mut unchecked, &mut checkpoint, &lost);
        if let Some(running) = checkpoint.take() {
            let _ = running.await;
        }
    };
    if tokio::time::timeout(LAST_CHECKPOINT_WAIT, last).await.is_err() {
        tracing::info!("stopping before the last checkpoint; the next start replays the journal");
    }
}

/// Puts every record the router holds among the keys of the next
/// checkpoint: the lost bucket held the ones that had not changed since.
/// Through the one checkpoint in flight at a time, so no older value is
/// written after a newer one. (The engine may be a few batches ahead of the
/// journal; those batches follow with their own values, which replay agrees
/// with.)
async fn record_everything(engine: &EngineHandle, unchecked: &mut Unchecked) {
    let Ok(all) = engine.query(|router, _| router.all_records()).await else { return };
    let changes = all
        .levels
        .map(Change::Levels)
        .into_iter()
        .chain(all.agents.into_iter().map(Change::Agent))
        .chain(all.inquiries.into_iter().map(|r| Change::Inquiry(Box::new(r))));
    let writes: Vec<Write> = changes.map(|c| (key_of(&c), value_of(&c))).collect();
    tracing::info!(
        records = writes.len(),
        "recording every record again with the next checkpoint (the state bucket was lost)"
    );
    let through = unchecked.through;
    unchecked.add(writes, through);
}

/// Passes `result` on; when it failed, creates the bucket or the journal
/// again if the server lost them (a new journal from `next_seq`), and sets
/// `lost` so that everything is recorded anew.
async fn mend_if_lost<T>(
    store: &StateStore,
    result: Result<T, async_nats::Error>,
    next_seq: u64,
    lost: &AtomicBool,
) -> Result<T, async_nats::Error> {
    if result.is_err() && store.recreate_if_lost(next_seq).await {
        lost.store(true, Ordering::Relaxed);
    }
    result
}

/// Hands the unchecked keys to a new checkpoint, unless one still runs (its
/// successor then takes everything changed meanwhile).
fn start_checkpoint(
    store: &StateStore,
    unchecked: &mut Unchecked,
    running: &mut Option<JoinHandle<()>>,
    lost: &Arc<AtomicBool>,
) {
    if unchecked.latest.is_empty() || running.as_ref().is_some_and(|r| !r.is_finished()) {
        return;
    }
    let (writes, through) = unchecked.take();
    let (store, lost) = (store.clone(), lost.clone());
    *running = Some(tokio::spawn(async move {
        let started = std::time::Instant::now();
        until_done("cannot checkpoint routing state", || async {
            mend_if_lost(&store, store.checkpoint(&writes, through).await, through + 1, &lost).await
        })
        .await;
        let took_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(keys = writes.len(), through, took_ms, "checkpoint written");
    }));
}

/// The writes of a group, in order, each key once with its last value.
/// Only that last value is encoded: under load one agent's record changes
/// with every offer, accept and complete of a group, but is written once.
fn coalesce(group: &mut [Batch]) -> Vec<Write> {
    let mut last: Vec<(String, Change)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for batch in group.iter_mut() {
        for change in batch.changes.drain(..) {
            let key = key_of(&change);
            match index.get(&key) {
                Some(&i) => last[i].1 = change,
                None => {
                    index.insert(key.clone(), last.len());
                    last.push((key, change));
                }
            }
        }
    }
    last.into_iter().map(|(key, change)| (key, value_of(&change))).collect()
}

/// Retries `attempt` with backoff (0.1 s doubling to 5 s) until it succeeds.
async fn until_done<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, async_nats::Error>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "{what}; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
