//! Publish→offer latency for the benchmark: a [`LatencyBook`] notes when
//! each inquiry of one step left and, when its offer arrives, how long that
//! took; [`summarize`] turns the samples into nearest-rank percentiles.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The nearest-rank percentile `q` (0-1) of ascending `sorted` samples: the
/// smallest sample with at least `q` of all samples at or below it.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Percentiles of one step, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Percentiles of `micros` (samples in microseconds); `None` without samples.
pub fn summarize(mut micros: Vec<u64>) -> Option<LatencySummary> {
    micros.sort_unstable();
    let ms = |q: f64| percentile(&micros, q).map_or(0.0, |us| us as f64 / 1000.0);
    let mean = micros.iter().sum::<u64>() as f64 / micros.len().max(1) as f64 / 1000.0;
    Some(LatencySummary {
        samples: micros.len(),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        max_ms: *micros.last()? as f64 / 1000.0,
        mean_ms: mean,
    })
}

/// Send times of the inquiries `<run>-1 ..= <run>-capacity` and the
/// latencies of those whose first offer arrived.
pub struct LatencyBook {
    run: String,
    epoch: Instant,
    /// Nanoseconds after `epoch` plus one; 0 = not sent, or already seen.
    sent: Vec<AtomicU64>,
    samples: Mutex<Vec<u64>>,
}

impl LatencyBook {
    /// A book for ids `<run>-<seq>`, seq from 1 to `capacity`.
    pub fn new(run: &str, capacity: usize) -> LatencyBook {
        LatencyBook {
            run: format!("{run}-"),
            epoch: Instant::now(),
            sent: (0..=capacity).map(|_| AtomicU64::new(0)).collect(),
            samples: Mutex::new(Vec::with_capacity(capacity)),
        }
    }

    fn slot(&self, id: &str) -> Option<&AtomicU64> {
        let seq: usize = id.strip_prefix(self.run.as_str())?.parse().ok()?;
        self.sent.get(seq)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    /// Notes that inquiry `id` was due to leave `at` (its scheduled time:
    /// a publisher that falls behind its schedule adds that delay, rather
    /// than hide it).
    pub fn mark_at(&self, id: &str, at: Instant) {
        if let Some(slot) = self.slot(id) {
            slot.store(at.saturating_duration_since(self.epoch).as_nanos() as u64 + 1, Ordering::Relaxed);
        }
    }

    /// Notes that inquiry `id` leaves now.
    pub fn mark(&self, id: &str) {
        if let Some(slot) = self.slot(id) {
            slot.store(self.now(), Ordering::Relaxed);
        }
    }

    /// Notes that the first offer of `id` arrived now (later ones are ignored).
    pub fn observe(&self, id: &str) {
        let Some(slot) = self.slot(id) else { return };
        let sent = slot.swap(0, Ordering::Relaxed);
        if sent != 0 {
            let micros = self.now().saturating_sub(sent) / 1000;
            self.samples.lock().unwrap_or_else(|e| e.into_inner()).push(micros);
        }
    }

    /// Offers seen so far.
    pub fn seen(&self) -> usize {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The latencies (microseconds) seen so far.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
