//! One router per state bucket. Two routers on one bucket would split the
//! inbound stream between them, each offering its share from its own state,
//! and overwrite each other's records. So the router that decides holds a
//! lease, the key `router-lease` in the bucket, and renews it every third of
//! `nats.lease`; a second router waits until the key is released (a clean
//! stop deletes it) or has not changed for a whole `nats.lease` by its own
//! clock (the holder crashed or lost NATS), then takes it over by revision,
//! so only one of several waiting routers can. No clocks are compared across
//! machines.
//!
//! A router that finds its lease taken over (it was cut off from NATS, or
//! paused, for longer than `nats.lease`) exits at once: the other one has
//! restored the state meanwhile and decides now. Until then, journal appends
//! and checkpoints wait while the lease is not known to be renewed (see
//! [`Fence`]), so a router that stalls does not write after its lease lapsed.

use async_nats::jetstream::kv;
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The lease's key in the state bucket.
pub const LEASE_KEY: &str = "router-lease";

/// How long writes may go on: until the last renewal plus the lease, less
/// a margin for the time a renewal takes to reach the server.
#[derive(Clone)]
pub struct Fence(watch::Receiver<Instant>);

impl Fence {
    /// Waits until the lease is known to be held now.
    pub async fn held(&self) {
        let mut valid = self.0.clone();
        while Instant::now() >= *valid.borrow_and_update() {
            let left = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                _ = valid.changed() => {}
                _ = left => {}
            }
        }
    }
}

/// A held lease; [`Lease::keep`] renews it until stopped.
pub struct Lease {
    kv: kv::Store,
    holder: String,
    revision: u64,
    ttl: Duration,
    valid: watch::Sender<Instant>,
}

/// Who this process is, for the lease and the logs of the router it keeps waiting.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/pid {}/started {}", std::process::id(), crate::adapters::engine::now_ms())
}

fn value(holder: &str) -> Bytes {
    let renewed = crate::adapters::engine::now_ms();
    Bytes::from(serde_json::json!({ "holder": holder, "renewed_at_ms": renewed }).to_string())
}

/// The holder named in a lease value, for the logs.
fn holder_of(value: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(value).ok();
    parsed.and_then(|v| v.get("holder").and_then(|h| h.as_str()).map(str::to_string)).unwrap_or_else(|| "?".into())
}

impl Lease {
    /// Takes the lease of `bucket`, waiting while another router holds it;
    /// None on shutdown.
    pub async fn acquire(kv: kv::Store, bucket: &str, ttl: Duration, shutdown: &CancellationToken) -> Option<Lease> {
        let holder = holder_name();
        // The revision last seen held by someone else, and since when, by this clock.
        let mut seen: Option<(u64, Instant)> = None;
        loop {
            let started = Instant::now();
            let taken = match kv.entry(LEASE_KEY).await {
                Ok(None) => kv.create(LEASE_KEY, value(&holder)).await.ok(),
                Ok(Some(e)) if e.operation != kv::Operation::Put => {
                    kv.update(LEASE_KEY, value(&holder), e.revision).await.ok()
                }
                Ok(Some(e)) => match seen {
                    Some((revision, since)) if revision == e.revision && since.elapsed() >= ttl => {
                        let taken = kv.update(LEASE_KEY, value(&holder), e.revision).await.ok();
                        if taken.is_some() {
                            tracing::warn!(
                                previous = %holder_of(&e.value),
                                silent_for = ?since.elapsed(),
                                "took over the state bucket from a router that stopped renewing its lease"
                            );
                        }
                        taken
                    }
                    Some((revision, _)) if revision == e.revision => None,
                    // Renewed since: still held. Said once, not at every renewal.
                    Some(_) => {
                        seen = Some((e.revision, Instant::now()));
                        None
                    }
                    None => {
                        tracing::warn!(
                            bucket,
                            holder = %holder_of(&e.value),
                            lease = ?ttl,
                            "another router uses this state bucket; waiting until it stops, or its lease goes {ttl:?} \
                             unrenewed (only one router may use a bucket: a second tenant needs nats.state_bucket, \
                             nats.stream and nats.consumer of its own)"
                        );
                        seen = Some((e.revision, Instant::now()));
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the router lease yet; retrying");
                    None
                }
            };
            if let Some(revision) = taken {
                let (valid, _) = watch::channel(started + ttl.mul_f64(2.0 / 3.0));
                return Some(Lease { kv, holder, revision, ttl, valid });
            }
            let pause = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.cancelled() => return None,
            }
        }
    }

    /// What journal appends and checkpoints wait on.
    pub fn fence(&self) -> Fence {
        Fence(self.valid.subscribe())
    }

    /// Renews the lease every third of its length until `stop`, then
    /// releases it. Exits the process if another router took it over.
    pub async fn keep(mut self, stop: CancellationToken) {
        let every = self.ttl / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => break,
            }
            let started = Instant::now();
            match self.kv.update(LEASE_KEY, value(&self.holder), self.revision).await {
                Ok(revision) => {
                    self.revision = revision;
                    self.valid.send_replace(started + self.ttl.mul_f64(2.0 / 3.0));
                }
                Err(e) => self.after_failed_renewal(e).await,
            }
        }
        // Released only if still ours: the next router starts at once.
        if let Err(e) = self.kv.delete_expect_revision(LEASE_KEY, Some(self.revision)).await {
            tracing::info!(error = %e, "could not release the router lease; the next router waits for it to lapse");
        }
    }

    /// A renewal failed: if the server is away, the next one tries again
    /// (writes wait meanwhile). If the key is gone (the bucket was lost and
    /// created anew), it is created again. If another router holds it, this
    /// one must stop deciding at once.
    async fn after_failed_renewal(&mut self, error: kv::UpdateError) {
        match self.kv.entry(LEASE_KEY).await {
            Ok(Some(e)) if e.operation == kv::Operation::Put && holder_of(&e.value) != self.holder => {
                tracing::error!(
                    holder = %holder_of(&e.value),
                    "another router took over the state bucket while this one could not renew its lease (cut off from \
                     NATS or paused for longer than nats.lease); exiting so that only one router decides"
                );
                std::process::exit(3);
            }
            Ok(Some(e)) if e.operation == kv::Operation::Put => self.revision = e.revision,
            Ok(_) => {
                if let Ok(revision) = self.kv.create(LEASE_KEY, value(&self.holder)).await {
                    self.revision = revision;
                    self.valid.send_replace(Instant::now() + self.ttl.mul_f64(2.0 / 3.0));
                }
            }
            Err(_) => tracing::warn!(error = %error, "cannot renew the router lease; retrying"),
        }
    }
}
