//! Publishes inquiries with JetStream publishes whose acknowledgements are
//! collected in the background (pipelined), so the pace never waits for a
//! round trip: along a [`Schedule`], or as fast as a backlog bound allows.
//!
//! An inquiry counts as published once the stream acknowledged it; a refused
//! or timed-out publish counts as an error.

use super::traffic::{encode, Format, InquiryMaker, Schedule};
use super::Counters;
use crate::proto;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Wall-clock milliseconds since the epoch, for `created_at_ms`.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Encodes, publishes and hands each acknowledgement to the collector.
pub struct Sender {
    js: Context,
    /// Subjects are `<subject_root>.<shop_id>`.
    subject_root: String,
    format: Format,
    maker: InquiryMaker,
    acks: mpsc::Sender<PublishAckFuture>,
    collector: JoinHandle<()>,
    counters: Arc<Counters>,
    sent: u64,
}

impl Sender {
    /// A sender to `<subject_root>.<shop_id>` (e.g. `support.inquiries`).
    pub fn new(
        js: Context,
        subject_root: &str,
        format: Format,
        maker: InquiryMaker,
        counters: Arc<Counters>,
    ) -> Sender {
        let (acks, rx) = mpsc::channel(16_384);
        let collector = tokio::spawn(collect_acks(rx, counters.clone()));
        Sender { js, subject_root: subject_root.to_string(), format, maker, acks, collector, counters, sent: 0 }
    }

    /// Inquiries handed to NATS so far (acknowledged or not).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Draws, encodes and publishes one inquiry; `mark` sees it just before
    /// it leaves (the benchmark takes its timestamp there).
    pub async fn send_one(&mut self, mark: &mut impl FnMut(&proto::Inquiry)) {
        let inquiry = self.maker.next(wall_ms());
        let (headers, body) = encode(self.format, &inquiry);
        let subject = format!("{}.{}", self.subject_root, inquiry.shop_id);
        mark(&inquiry);
        self.sent += 1;
        match self.js.publish_with_headers(subject, headers, body).await {
            Ok(ack) => {
                if self.acks.send(ack).await.is_err() {
                    Counters::bump(&self.counters.publish_errors);
                }
            }
            Err(e) => {
                Counters::bump(&self.counters.publish_errors);
                tracing::warn!(error = %e, "publish failed");
            }
        }
    }

    /// Waits for every outstanding acknowledgement.
    pub async fn finish(self) {
        drop(self.acks);
        let _ = self.collector.await;
    }
}

/// Publishes along `schedule` until it ends or `stop`; false when stopped
/// early. `mark` sees each inquiry with the time it was due.
pub async fn along(
    sender: &mut Sender,
    mut schedule: Schedule,
    stop: &CancellationToken,
    mut mark: impl FnMut(&proto::Inquiry, std::time::Instant),
) -> bool {
    let start = tokio::time::Instant::now();
    while let Some(at) = schedule.next_arrival() {
        // Timers tick in milliseconds: faster rates go out in small bursts.
        let due = start + Duration::from_secs_f64(at);
        if due > tokio::time::Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.cancelled() => return false,
            }
        } else if stop.is_cancelled() {
            return false;
        }
        let due = due.into_std();
        sender.send_one(&mut |inquiry: &proto::Inquiry| mark(inquiry, due)).await;
    }
    true
}

/// Publishes as fast as it can for `duration`, pausing while `backlog(sent)`
/// says too much is waiting downstream.
pub async fn flat_out(
    sender: &mut Sender,
    duration: Duration,
    stop: &CancellationToken,
    backlog_full: impl Fn(u64) -> bool,
) {
    let until = Instant::now() + duration;
    let mut mark = |_: &proto::Inquiry| {};
    while Instant::now() < until && !stop.is_cancelled() {
        if backlog_full(sender.sent()) {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        for _ in 0..64 {
            sender.send_one(&mut mark).await;
        }
    }
}

async fn collect_acks(mut acks: mpsc::Receiver<PublishAckFuture>, counters: Arc<Counters>) {
    let mut pending = FuturesUnordered::new();
    let count = |result: Result<_, _>| match result {
        Ok(_) => Counters::bump(&counters.published),
        Err(e) => {
            Counters::bump(&counters.publish_errors);
            tracing::warn!(error = %e, "publish not acknowledged");
        }
    };
    loop {
        tokio::select! {
            next = acks.recv() => match next {
                Some(ack) => pending.push(ack.into_future()),
                None => break,
            },
            Some(result) = pending.next(), if !pending.is_empty() => count(result),
        }
    }
    while let Some(result) = pending.next().await {
        count(result);
    }
}
