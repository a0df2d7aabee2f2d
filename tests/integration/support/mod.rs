//! Real servers for the integration tests: a `nats-server -js` on a free port
//! with its own store, and the `ticket-router serve` binary itself.

pub mod agents;
pub mod client;
pub mod nats_server;
pub mod prometheus;
pub mod promtool;
pub mod router;

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
/// Waiting is by condition, never by asserting how long something took.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
