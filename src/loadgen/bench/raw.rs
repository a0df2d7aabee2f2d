//! The raw ceiling of the NATS server: the same payloads published to a
//! separate stream configured like the router's (work-queue retention, file
//! storage, 2 min duplicate window) with pipelined acks, and consumed and
//! acknowledged one by one by a pull consumer configured like the router's —
//! no router in between. The stream is removed afterwards.

use super::{measure, BenchOptions, Throughput};
use crate::loadgen::publisher::{flat_out, Sender};
use crate::loadgen::traffic::{InquiryMaker, Mix};
use crate::loadgen::{Counters, LoadgenError};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Name of the benchmark's own stream.
pub const STREAM: &str = "BENCH_RAW";
/// Its subjects.
pub const SUBJECT_ROOT: &str = "benchraw.inquiries";

/// Measures publish → consume → ack throughput for `options.saturation`.
pub async fn ceiling(
    client: &async_nats::Client,
    options: &BenchOptions,
    run: &str,
) -> Result<Throughput, LoadgenError> {
    let js = jetstream::new(client.clone());
    let consumer = setup(&js).await?;
    let consumed = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let consuming = tokio::spawn(consume(consumer, consumed.clone(), stop.clone()));

    let counters = Counters::shared();
    let maker = InquiryMaker::new(&format!("{run}-raw"), Mix::NoDeflection, options.seed);
    let mut sender = Sender::new(js.clone(), SUBJECT_ROOT, options.format, maker, counters.clone());
    let backlog = options.backlog;
    let seen = consumed.clone();
    let publishing = async {
        let full = move |sent: u64| sent.saturating_sub(seen.load(Ordering::Relaxed)) > backlog;
        flat_out(&mut sender, options.warmup + options.saturation, &stop, full).await;
    };
    let count = || consumed.load(Ordering::Relaxed);
    let measuring = measure(options.warmup, options.saturation, count, &options.processes);
    let (_, throughput) = tokio::join!(publishing, measuring);
    sender.finish().await;
    stop.cancel();
    let _ = consuming.await;
    if Counters::get(&counters.publish_errors) > 0 {
        tracing::warn!(errors = Counters::get(&counters.publish_errors), "raw publishes failed");
    }
    let _ = js.delete_stream(STREAM).await;
    Ok(throughput)
}

async fn setup(js: &jetstream::Context) -> Result<consumer::PullConsumer, LoadgenError> {
    let error = |e: &dyn std::fmt::Display| LoadgenError::JetStream(format!("stream {STREAM}: {e}"));
    let _ = js.delete_stream(STREAM).await;
    let config = stream::Config {
        name: STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_ROOT}.>")],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let stream = js.create_stream(config).await.map_err(|e| error(&e))?;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .map_err(|e| error(&e))
}

async fn consume(consumer: consumer::PullConsumer, consumed: Arc<AtomicU64>, stop: CancellationToken) {
    let Ok(messages) = consumer.messages().await else {
        tracing::error!("cannot consume the raw benchmark stream");
        return;
    };
    let mut messages = std::pin::pin!(messages.take_until(stop.cancelled_owned()));
    while let Some(next) = messages.next().await {
        match next {
            Ok(message) => {
                if message.ack().await.is_ok() {
                    consumed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "raw consumer error"),
        }
    }
}
