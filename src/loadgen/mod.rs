//! `ticket-router loadgen`: realistic traffic against a running router —
//! inquiries published to a real NATS and simulated agents over gRPC — with a
//! live status, and a benchmark mode that sets the router's throughput and
//! latency against the raw ceiling of the same NATS server.
//!
//! It is a client like any other: it decides nothing about routing and reads
//! the router only through its public contract (NATS subjects, gRPC, the
//! `support.levels` subject). Logs and status name inquiries by id and agents
//! by id, never by customer data.
//!
//! # Layout
//!
//! * [`traffic`] — the rate curve (phases), the shop's category and customer
//!   mix, and the encoding of each inquiry (JSON or protobuf).
//! * [`publisher`] — paces the curve and publishes with pipelined JetStream acks.
//! * [`agents`] — simulated agent desktops: subscribe, accept, handle, complete,
//!   reconnect.
//! * [`status`] — the live terminal status from `Ops` and `support.levels`.
//! * [`run`] — the load run: all of the above until the curve ends or Ctrl-C.
//! * [`bench`] — benchmark mode; [`latency`] — percentiles; `rng` — seeded draws.

pub mod agents;
pub mod bench;
pub mod latency;
pub mod publisher;
pub mod run;
pub mod status;
pub mod traffic;

#[cfg(test)]
mod tests;

pub use run::{run, RunOptions, Summary};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Why a load run or benchmark could not go on; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("cannot connect to NATS at {url}: {detail}; is nats-server running (with -js) and is --nats right?")]
    Nats { url: String, detail: String },
    #[error(
        "cannot reach the router's gRPC at {url}: {detail}; is `ticket-router serve` running and is --grpc right?"
    )]
    Grpc { url: String, detail: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the router has no skill groups to staff (GetQueues returned none)")]
    NoGroups,
    #[error("cannot write {path}: {detail}")]
    Write { path: String, detail: String },
}

/// What happened so far, shared by the publisher, the agents and the status.
#[derive(Debug, Default)]
pub struct Counters {
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub offered: AtomicU64,
    pub accepted: AtomicU64,
    pub completed: AtomicU64,
    /// Accepts refused because the offer was withdrawn meanwhile (timeout, cancellation).
    pub withdrawn: AtomicU64,
    pub deflected: AtomicU64,
    pub deadlettered: AtomicU64,
    /// gRPC failures other than a lost race with a withdrawal.
    pub grpc_errors: AtomicU64,
    pub reconnects: AtomicU64,
    /// Agents whose offer stream is open now.
    pub online: AtomicU64,
}

impl Counters {
    /// Fresh counters to share.
    pub fn shared() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value of `counter` now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Everything that means something went wrong (not a lost race).
    pub fn errors(&self) -> u64 {
        Self::get(&self.publish_errors) + Self::get(&self.deadlettered) + Self::get(&self.grpc_errors)
    }
}

/// Connects to NATS as `name`, with the user and password (or token) the
/// URL may carry; errors show the URL without them.
pub async fn connect_nats(url: &str, name: &str) -> Result<async_nats::Client, LoadgenError> {
    use crate::adapters::nats::{with_url_credentials, without_credentials, without_password};
    let options = async_nats::ConnectOptions::new().name(name).connection_timeout(Duration::from_secs(5));
    with_url_credentials(options, url)
        .connect(without_credentials(url).as_str())
        .await
        .map_err(|e| LoadgenError::Nats { url: without_password(url), detail: e.to_string() })
}

/// A gRPC channel to `url` (`http://host:port`), connected now.
pub async fn connect_grpc(url: &str) -> Result<Channel, LoadgenError> {
    let error = |detail: String| LoadgenError::Grpc { url: url.to_string(), detail };
    Channel::from_shared(url.to_string())
        .map_err(|e| error(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| error(e.to_string()))
}

/// The router's group ids, asked over `Ops.GetQueues`, retrying for up to
/// `patience` while the router starts.
pub async fn router_groups(url: &str, patience: Duration) -> Result<Vec<String>, LoadgenError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let attempt = async {
            let mut ops = crate::proto::ops_client::OpsClient::new(connect_grpc(url).await?);
            let queues = ops
                .get_queues(crate::proto::GetQueuesRequest {})
                .await
                .map_err(|e| LoadgenError::Grpc { url: url.to_string(), detail: e.message().to_string() })?;
            Ok::<_, LoadgenError>(queues.into_inner().groups.into_iter().map(|g| g.group).collect::<Vec<_>>())
        };
        match attempt.await {
            Ok(groups) if groups.is_empty() => return Err(LoadgenError::NoGroups),
            Ok(groups) => return Ok(groups),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
