//! The journal task: writes the changes of each batch to the state bucket,
//! then completes the batches in order (their effects go out, callers are
//! answered, inbound messages get acknowledged).
//!
//! Batches that queue up while a write is in flight are written together
//! (group commit), with repeated keys written once. A failed write is retried
//! with backoff until it succeeds — a decision is never dropped; while NATS is
//! away, decisions wait here and nothing is announced that is not recorded.

use super::{key_of, value_of, StateStore, Write};
use crate::adapters::engine::Batch;
use crate::core::snapshot::Change;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most batches written in one group commit.
const MAX_GROUP: usize = 1024;

/// Runs until every sender is gone and the queue is empty.
pub async fn run(store: StateStore, mut batches: mpsc::UnboundedReceiver<Batch>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = batches.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match batches.try_recv() {
                Ok(batch) => group.push(batch),
                Err(_) => break,
            }
        }
        let writes = coalesce(&mut group);
        write_until_done(&store, &writes).await;
        for batch in group.drain(..) {
            batch.complete();
        }
    }
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

async fn write_until_done(store: &StateStore, writes: &[Write]) {
    if writes.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.write(writes).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, writes = writes.len(), retry_in = ?backoff, "cannot record routing state; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
