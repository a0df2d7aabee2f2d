//! Writing a checkpoint into the bucket: how many writes are in flight at
//! once, and how they are paced over the second between checkpoints.

use super::append::Held;
use super::{frame, Appended, ForeignWrite, StateStore, Write, ACK_WINDOW, CHECKPOINT_KEY, UNKNOWN};
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream;
use bytes::Bytes;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Names the process that put a value in the bucket (its journal run id),
/// so that a retry knows its own earlier puts from another router's.
const WRITER_HEADER: &str = "Ticket-Router-Writer";

/// Most checkpoint writes in flight at once. Checkpoints share the connection
/// with the journal, whose appends queue behind whatever was sent before
/// them; a small window keeps a checkpoint from delaying decisions.
const CHECKPOINT_WINDOW: usize = 64;

/// A checkpoint this large means decisions outran checkpoints (a second holds
/// ~5,000 changed records at 5,000 inquiries/s)...
const CATCH_UP_KEYS: usize = 10_000;
/// ...and is written with this many in flight, so that checkpoints catch up
/// instead of falling further behind (the journal and the records waiting for
/// the next checkpoint grow meanwhile); appends then wait a little longer.
const CATCH_UP_WINDOW: usize = 512;
const _: () = assert!(CATCH_UP_WINDOW <= ACK_WINDOW, "within the ack permits the context lends");

/// How long a routine checkpoint (at most `CATCH_UP_KEYS` writes) is spread
/// over, window after window, out of the second between checkpoints. Sent as
/// fast as acknowledgements came, the ~5,000 writes of a second at 5,000
/// inquiries/s took 120-380 ms in which the server had little time for
/// anything else: in three runs, 65-78 % of the inquiries offered more than
/// 15 ms after they were due were offered during such a burst (a quarter of
/// the time), and about a third as many were that late once spread.
pub const CHECKPOINT_SPREAD: Duration = Duration::from_millis(600);

/// When the windows of a checkpoint start: evenly over `over`, counted
/// from `from` — the first attempt's start, so that a retry goes on with the
/// windows left rather than wait through the spread again.
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    pub from: tokio::time::Instant,
    pub over: Duration,
}

impl Pace {
    /// Windows one after another, as fast as acknowledgements come.
    pub fn unspread() -> Pace {
        Pace { from: tokio::time::Instant::now(), over: Duration::ZERO }
    }
}

/// When window `index` of `count` starts, after the checkpoint's start.
fn window_start(spread: Duration, index: usize, count: usize) -> Duration {
    let fraction = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    spread * fraction(index) / fraction(count.max(1))
}

/// Writes in flight for a checkpoint of `keys` writes.
fn checkpoint_window(keys: usize) -> usize {
    if keys > CATCH_UP_KEYS {
        CATCH_UP_WINDOW
    } else {
        CHECKPOINT_WINDOW
    }
}

impl StateStore {
    /// Writes the latest value of every key changed up to journal sequence
    /// `through`, records that the bucket covers it, and purges the journal
    /// up to it (a failed purge is left to the next checkpoint). When
    /// `may_mark` says no at that point (the bucket was lost, and the records
    /// it lacks are not yet in the journal), only the values are written and
    /// the journal keeps everything. `windows_done` counts the windows of
    /// writes stored so far, across attempts.
    pub async fn checkpoint(
        &self,
        writes: &[Write],
        through: u64,
        may_mark: impl Fn() -> bool,
        windows_done: &AtomicUsize,
    ) -> Result<(), async_nats::Error> {
        self.checkpoint_paced(writes, through, may_mark, windows_done, Pace::unspread()).await
    }

    /// [`StateStore::checkpoint`], its windows started as `pace` says (none
    /// is held back when the ones before it took longer). A checkpoint of
    /// more than `CATCH_UP_KEYS` writes is never spread: it is catching up.
    pub async fn checkpoint_paced(
        &self,
        writes: &[Write],
        through: u64,
        may_mark: impl Fn() -> bool,
        windows_done: &AtomicUsize,
        pace: Pace,
    ) -> Result<(), async_nats::Error> {
        let bucket = if writes.iter().any(|(_, value)| value.is_none()) {
            Some(self.js.get_stream(format!("KV_{}", self.bucket)).await?)
        } else {
            None
        };
        // A retry goes on after the windows already written: a large
        // checkpoint over a server that times out now and then must not
        // start over each time.
        let size = checkpoint_window(writes.len());
        let spread = if size == CHECKPOINT_WINDOW { pace.over } else { Duration::ZERO };
        let count = writes.len().div_ceil(size);
        let windows = writes.chunks(size).enumerate();
        for (index, window) in windows.skip(windows_done.load(Ordering::Relaxed)) {
            if !spread.is_zero() {
                tokio::time::sleep_until(pace.from + window_start(spread, index, count)).await;
            }
            self.write_window(window, bucket.as_ref()).await?;
            windows_done.store(index + 1, Ordering::Relaxed);
        }
        if !may_mark() {
            tracing::info!(through, "checkpoint written without its marker: the bucket was lost and is being refilled");
            return Ok(());
        }
        let marker = Bytes::from(through.to_string());
        self.write_window(&[(CHECKPOINT_KEY.to_string(), Some(marker))], None).await?;
        // Purging is a write too: none once the lease may be another's.
        self.lease_held().await;
        let purged: Result<_, async_nats::Error> =
            async { Ok(self.js.get_stream(&self.journal).await?.purge().sequence(through + 1).await?) }.await;
        if let Err(e) = purged {
            tracing::warn!(error = %e, "cannot purge the checkpointed journal; the next checkpoint will");
        }
        Ok(())
    }

    /// Puts new values and removes deleted keys outright: a KV delete marker
    /// would stay in the bucket for good (one per inquiry ever forgotten),
    /// and every start would read them all. A key with no message is absent.
    ///
    /// Each put names the bucket sequence it must follow, as journal
    /// appends do (see `append`): a put this router sent just before it was
    /// cut off cannot land after another router's writes and stand in the
    /// bucket over them. Puts an earlier attempt stored (its
    /// acknowledgement lost) are found at their places and kept.
    async fn write_window(&self, writes: &[Write], bucket: Option<&stream::Stream>) -> Result<(), async_nats::Error> {
        self.lease_held().await;
        let puts: Vec<(String, Bytes)> = writes
            .iter()
            .filter_map(|(key, value)| Some((format!("$KV.{}.{key}", self.bucket), value.clone()?)))
            .collect();
        let known = self.bucket_last().await?;
        let run = frame::run_id().to_string();
        let kind = |index: usize, message: &StreamMessage| {
            if message.headers.get(WRITER_HEADER).map(|v| v.as_str()) != Some(run.as_str()) {
                Held::Foreign
            } else if puts.get(index).is_some_and(|(s, b)| message.subject.as_str() == s && message.payload == b) {
                Held::AtPlace
            } else {
                Held::OwnStale
            }
        };
        let stream = format!("KV_{}", self.bucket);
        let header = Some((WRITER_HEADER, run.as_str()));
        let last = match self.write_in_place(&stream, "state bucket", &puts, known, header, kind).await? {
            Appended::Through(last) => last,
            Appended::Foreign { seq } => return Err(ForeignWrite { stream: "state bucket", seq }.into()),
        };
        // Unless a bucket created anew meanwhile made it unknown.
        let _ = self.bucket_last.compare_exchange(known, last, Ordering::AcqRel, Ordering::Acquire);
        let mut removals = Vec::new();
        for (key, value) in writes {
            if value.is_none() {
                let bucket = bucket.expect("deletes come with the bucket's stream");
                removals.push(IntoFuture::into_future(bucket.purge().filter(format!("$KV.{}.{key}", self.bucket))));
            }
        }
        for removed in futures::future::join_all(removals).await {
            removed?;
        }
        Ok(())
    }

    /// The bucket stream's last sequence as this router knows it; read from
    /// the server when not yet known (a store that was never loaded, or
    /// whose bucket was created anew).
    async fn bucket_last(&self) -> Result<u64, async_nats::Error> {
        match self.bucket_last.load(Ordering::Acquire) {
            UNKNOWN => {
                let stream = self.js.get_stream(format!("KV_{}", self.bucket)).await?;
                let last = stream.cached_info().state.last_sequence;
                self.bucket_last.store(last, Ordering::Release);
                Ok(last)
            }
            last => Ok(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_that_fell_behind_are_written_with_more_in_flight() {
        assert_eq!(checkpoint_window(1_000), CHECKPOINT_WINDOW);
        assert_eq!(checkpoint_window(CATCH_UP_KEYS), CHECKPOINT_WINDOW);
        assert_eq!(checkpoint_window(CATCH_UP_KEYS + 1), CATCH_UP_WINDOW);
    }

    #[test]
    fn a_spread_checkpoint_starts_its_windows_evenly() {
        let spread = Duration::from_millis(600);
        let starts: Vec<_> = (0..4).map(|i| window_start(spread, i, 4).as_millis()).collect();
        assert_eq!(starts, [0, 150, 300, 450]);
        assert_eq!(window_start(Duration::ZERO, 3, 4), Duration::ZERO);
        assert_eq!(window_start(spread, 0, 1), Duration::ZERO);
    }
}
