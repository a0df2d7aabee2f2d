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

use super::{
    frame, key_of, value_of, Appended, ForeignWrite, Limits, Pace, StateStore, StreamBehind, Write, CHECKPOINT_SPREAD,
};
use crate::adapters::engine::{Batch, EngineHandle};
use crate::core::snapshot::Change;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

/// Most batches appended in one group commit.
const MAX_GROUP: usize = 1024;
/// A checkpoint starts at least this often while changes come in...
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ...or as soon as this many keys changed since the last one.
const CHECKPOINT_KEYS: usize = 50_000;
const _: () = assert!(
    CHECKPOINT_SPREAD.as_millis() < CHECKPOINT_EVERY.as_millis(),
    "a spread checkpoint leaves its last windows time before the next one is due"
);
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

    /// Deletes waiting for the next checkpoint, of keys `writes` does not
    /// hold: records forgotten since the last checkpoint started, deleted
    /// only in the journal (a lost journal lost that too).
    fn deletes_outside(&self, writes: &[Write]) -> Vec<Write> {
        let kept: HashSet<&str> = writes.iter().map(|(key, _)| key.as_str()).collect();
        let deleted = self.latest.iter().filter(|(key, value)| value.is_none() && !kept.contains(key.as_str()));
        deleted.map(|(key, _)| (key.clone(), None)).collect()
    }

    fn take(&mut self) -> (Vec<Write>, u64) {
        (std::mem::take(&mut self.latest).into_iter().collect(), self.through)
    }
}

/// Counts the times the server lost the bucket or the journal and they were
/// created anew, and the last of those times whose snapshot of every record
/// the journal holds. Until the two agree the bucket may lack records that
/// did not change since, so no checkpoint marks it as covering the journal
/// (which would let the journal be purged).
#[derive(Default)]
struct Losses {
    recreated: AtomicU64,
    snapshotted: AtomicU64,
    /// The last journal sequence appended: a journal created anew goes on
    /// after it, whoever found the loss.
    tip: AtomicU64,
    /// The journal's last sequence as this router knows it (restored or
    /// appended, or where a journal it created anew starts): the next
    /// append must follow it, or someone else writes the journal.
    journal_last: AtomicU64,
    /// A checkpoint found another router's write in the bucket, or the
    /// bucket gone back: this router must stop.
    must_stop: AtomicBool,
    /// Held while a loss is looked into and mended.
    mending: tokio::sync::Mutex<()>,
}

impl Losses {
    fn unsnapshotted(&self) -> Option<u64> {
        let recreated = self.recreated.load(Ordering::Acquire);
        (recreated != self.snapshotted.load(Ordering::Acquire)).then_some(recreated)
    }
}

/// Runs until every sender is gone and the queue is empty. `replayed` is
/// what the start read from the journal, not yet in the bucket: the first
/// checkpoint writes it, since it purges the journal; `journal_last` is the
/// journal's last sequence the start read. `engine` is asked for every
/// record when the server lost the bucket or the journal. Ends early when
/// another router writes the journal or the bucket, or one of them went
/// back (see [`JournalEnd::Halted`]).
pub async fn run(
    store: StateStore,
    replayed: Vec<Write>,
    journal_last: u64,
    mut batches: mpsc::UnboundedReceiver<Batch>,
    engine: EngineHandle,
) -> JournalEnd {
    let mut group = Vec::with_capacity(MAX_GROUP);
    // Where the journal stands, so that one created anew after a loss goes
    // on from there even before this run has appended anything.
    let through = until_done("cannot read where the journal stands", || store.last_recorded()).await;
    let mut unchecked = Unchecked { through, latest: replayed.into_iter().collect() };
    // Aborted when dropped: a journal that ends, however, leaves no
    // checkpoint writing on its own after the lease is gone.
    let mut checkpoint: Option<AbortOnDropHandle<()>> = None;
    let losses = Arc::new(Losses::default());
    losses.tip.store(unchecked.through, Ordering::Release);
    losses.journal_last.store(journal_last, Ordering::Release);
    // The last loss a snapshot was asked for.
    let mut asked = 0;
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if losses.must_stop.load(Ordering::Acquire) {
            // The checkpoint said why. Nothing more goes out.
            return JournalEnd::Halted;
        }
        let first = tokio::select! {
            first = batches.recv() => first,
            _ = ticks.tick() => {
                ask_snapshot_if_lost(&engine, &losses, &mut asked).await;
                start_checkpoint(&store, &mut unchecked, &mut checkpoint, &losses, true);
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
        let snapshot = group.iter().filter_map(|b| b.snapshot).max();
        let limits = store.limits();
        let mut writes = coalesce(&mut group, limits.record);
        if let Some(loss) = snapshot {
            let deleted = unchecked.deletes_outside(&writes);
            writes.extend(deleted);
            tracing::info!(
                records = writes.len(),
                loss,
                "recording every record the router holds again (the server lost its store)"
            );
        }
        if !writes.is_empty() || snapshot.is_some() {
            let Some(through) = append(&store, &writes, unchecked.through, &losses, snapshot.is_some(), limits).await
            else {
                // Nothing of this group goes out, and no last checkpoint
                // writes over the other router's state.
                return JournalEnd::Halted;
            };
            unchecked.add(writes, through);
        } else {
            // Nothing to record, only effects to release: still not after
            // the lease may have gone to another router.
            store.lease_held().await;
        }
        if let Some(loss) = snapshot {
            losses.snapshotted.fetch_max(loss, Ordering::AcqRel);
        }
        ask_snapshot_if_lost(&engine, &losses, &mut asked).await;
        if losses.must_stop.load(Ordering::Acquire) {
            // Found by a checkpoint meanwhile.
            return JournalEnd::Halted;
        }
        for batch in group.drain(..) {
            batch.complete();
        }
        if unchecked.latest.len() >= CHECKPOINT_KEYS {
            // This many catch up unspread anyway.
            start_checkpoint(&store, &mut unchecked, &mut checkpoint, &losses, false);
        }
    }
    // The handle stays in `checkpoint` while it is awaited: given up on, the
    // task is stopped below rather than left writing on its own.
    let last = async {
        if let Some(running) = checkpoint.as_mut() {
            let _ = running.await;
        }
        checkpoint = None;
        // The last one goes out at once: the router is stopping.
        start_checkpoint(&store, &mut unchecked, &mut checkpoint, &losses, false);
        if let Some(running) = checkpoint.as_mut() {
            let _ = running.await;
        }
        checkpoint = None;
    };
    if tokio::time::timeout(LAST_CHECKPOINT_WAIT, last).await.is_err() {
        // Left running, it would go on writing windows, the marker and the
        // journal purge after the lease goes to the next router.
        if let Some(running) = checkpoint.take() {
            running.abort();
            let _ = running.await;
        }
        tracing::info!("stopping before the last checkpoint; the next start replays the journal");
    }
    if losses.must_stop.load(Ordering::Acquire) {
        return JournalEnd::Halted;
    }
    JournalEnd::Drained
}

/// Why the journal task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalEnd {
    /// Every sender was gone and every batch recorded: the router stops.
    Drained,
    /// Another router writes the journal or the bucket (see `append`), or
    /// one of them went back (the server lost messages): this router must
    /// stop, whatever else is going on, and a start reads what is there.
    Halted,
}

/// Appends one group commit, retrying until stored; the sequence its
/// records are recorded through (at least `through`, where the journal
/// stood). `None` when another router writes the journal, or the journal
/// went back: this one must stop.
async fn append(
    store: &StateStore,
    writes: &[Write],
    through: u64,
    losses: &Losses,
    snapshot: bool,
    limits: Limits,
) -> Option<u64> {
    let frames = frame::encode_group(writes, limits.frame, snapshot);
    let (after, appended) = until_done("cannot record routing state", || async {
        // Read at each attempt: a journal created anew meanwhile starts elsewhere.
        let after = losses.journal_last.load(Ordering::Acquire);
        match store.append(&frames, after).await {
            Err(e) if e.is::<StreamBehind>() => Ok((after, Err(e.to_string()))),
            other => mend_if_lost(store, other, losses).await.map(|appended| (after, Ok(appended))),
        }
    })
    .await;
    let last = match appended {
        Ok(Appended::Through(last)) => last,
        Ok(Appended::Foreign { seq }) => {
            stopping_for(&ForeignWrite { stream: "journal", seq }.to_string());
            return None;
        }
        Err(behind) => {
            stopping_for(&behind);
            return None;
        }
    };
    // Unless a journal created anew meanwhile (by the checkpoint) moved it.
    let _ = losses.journal_last.compare_exchange(after, last, Ordering::AcqRel, Ordering::Acquire);
    // An empty group (nothing to write) appends nothing: where it stood.
    let through = last.max(through);
    losses.tip.fetch_max(through, Ordering::AcqRel);
    Some(through)
}

/// After the server lost the bucket or the journal: asks the engine for
/// every record the router holds, since the lost store held the records
/// that had not changed lately. The engine sends them as a batch in order
/// with its decisions, so the group commit that carries them is a state the
/// router was in; the next checkpoints carry them into the bucket.
async fn ask_snapshot_if_lost(engine: &EngineHandle, losses: &Losses, asked: &mut u64) {
    let Some(loss) = losses.unsnapshotted().filter(|&loss| loss > *asked) else { return };
    *asked = loss;
    match engine.snapshot(loss).await {
        Ok(()) => {}
        Err(_) => tracing::error!(
            "the server lost the state store while the router was stopping; records that did not change \
             lately could not be recorded again and will be missing at the next start"
        ),
    }
}

/// Passes `result` on; when it failed, creates the bucket or the journal
/// again if the server lost them (a new journal after the last sequence
/// appended), and counts the loss so that everything is recorded anew.
async fn mend_if_lost<T>(
    store: &StateStore,
    result: Result<T, async_nats::Error>,
    losses: &Losses,
) -> Result<T, async_nats::Error> {
    if result.is_ok() {
        return result;
    }
    // One at a time: the journal task and a checkpoint often fail together,
    // and the second must see what the first created, not create it again
    // and move the journal's position back.
    let _mending = losses.mending.lock().await;
    let next_seq = losses.tip.load(Ordering::Acquire) + 1;
    store
        .recreate_if_lost(next_seq, |journal_lost| {
            losses.recreated.fetch_add(1, Ordering::AcqRel);
            if journal_lost {
                losses.journal_last.store(next_seq - 1, Ordering::Release);
            }
        })
        .await;
    result
}

/// Says why the router stops: where its own write was to go, it found
/// another router's, or the journal or the bucket went back.
fn stopping_for(why: &str) {
    tracing::error!(
        "{why}; stopping without recording or announcing anything more. Another router's write means it holds \
         the lease now (this router was cut off from NATS or paused for longer than nats.lease); a stream gone \
         back means the server lost messages. Either way the next start reads what the server holds"
    );
}

/// Hands the unchecked keys to a new checkpoint, unless one still runs (its
/// successor then takes everything changed meanwhile).
fn start_checkpoint(
    store: &StateStore,
    unchecked: &mut Unchecked,
    running: &mut Option<AbortOnDropHandle<()>>,
    losses: &Arc<Losses>,
    paced: bool,
) {
    let taken = losses.must_stop.load(Ordering::Acquire);
    if taken || unchecked.latest.is_empty() || running.as_ref().is_some_and(|r| !r.is_finished()) {
        return;
    }
    // After a loss, none starts before the snapshot is in the journal: one
    // could otherwise mark and purge past it with sequences of the old one.
    if losses.unsnapshotted().is_some() {
        return;
    }
    let (writes, through) = unchecked.take();
    let (store, losses) = (store.clone(), losses.clone());
    *running = Some(AbortOnDropHandle::new(tokio::spawn(async move {
        let started = std::time::Instant::now();
        let pace =
            Pace { from: tokio::time::Instant::now(), over: if paced { CHECKPOINT_SPREAD } else { Duration::ZERO } };
        let may_mark = || losses.unsnapshotted().is_none();
        let windows_done = AtomicUsize::new(0);
        let taken = until_done("cannot checkpoint routing state", || async {
            let written = store.checkpoint_paced(&writes, through, may_mark, &windows_done, pace).await;
            match written {
                Err(e) if e.is::<ForeignWrite>() || e.is::<StreamBehind>() => {
                    stopping_for(&e.to_string());
                    Ok(true)
                }
                other => mend_if_lost(&store, other, &losses).await.map(|()| false),
            }
        })
        .await;
        if taken {
            losses.must_stop.store(true, Ordering::Release);
            return;
        }
        let took_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(keys = writes.len(), through, took_ms, "checkpoint written");
    })));
}

/// The writes of a group, in order, each key once with its last value.
/// Only that last value is encoded: under load one agent's record changes
/// with every offer, accept and complete of a group, but is written once.
fn coalesce(group: &mut [Batch], record_limit: usize) -> Vec<Write> {
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
    last.into_iter().map(|(key, change)| (key, value_of(&change, record_limit))).collect()
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
                let text = e.to_string();
                // A server that answers but refuses is not "hung": say where to look.
                let refused = ["maximum messages", "maximum bytes", "insufficient", "resource limit", "storage"]
                    .iter()
                    .any(|w| text.contains(w));
                if refused {
                    tracing::warn!(error = %e, retry_in = ?backoff, "{what}; retrying. NATS refuses the write: check the \
                        limits of the streams JOURNAL_<nats.state_bucket> and KV_<nats.state_bucket> (`nats stream info`), the \
                        server's JetStream storage and the account's JetStream limits");
                } else {
                    tracing::warn!(error = %e, retry_in = ?backoff, "{what}; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
