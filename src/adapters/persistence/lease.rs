//! One router per state bucket. Two routers on one bucket would split the
//! inbound stream between them, each offering its share from its own state,
//! and overwrite each other's records. So the router that decides holds a
//! lease: the key `router` in a small bucket of its own,
//! `<state_bucket>_lease` (apart from the state, so that losing the state
//! bucket is repaired as before and cannot hand the lease to a second
//! router). The holder renews it every third of `nats.lease`.
//!
//! A second router takes the lease at once only when it is free: never
//! written, or released by a clean stop (a delete marker). Otherwise it waits
//! until the key has not changed for a whole `nats.lease` by its own clock
//! (the holder crashed, or lost NATS; a key that vanished or was purged
//! counts as a change), then takes it over by revision, so only one of
//! several waiting routers can. No clocks are compared across machines.
//!
//! A holder that finds its lease taken over or released by someone else
//! (it was cut off from NATS, or paused, for longer than `nats.lease`)
//! exits at once: the other one has restored the state meanwhile and
//! decides now. Until then, journal appends and checkpoints wait while the
//! lease is not known to be renewed (see [`Fence`]).

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The lease's key in its bucket.
pub const LEASE_KEY: &str = "router";

/// The bucket holding the lease of state bucket `state_bucket`.
pub fn lease_bucket(state_bucket: &str) -> String {
    format!("{state_bucket}_lease")
}

/// How long writes may go on: until the last renewal plus two thirds of
/// the lease, well before a waiting router can take it over.
#[derive(Clone)]
pub struct Fence(watch::Receiver<Instant>);

impl Fence {
    /// Waits until the lease is known to be held now.
    pub async fn held(&self) {
        let mut valid = self.0.clone();
        while Instant::now() >= *valid.borrow_and_update() {
            let left = tokio::time::sleep(Duration::from_millis(100));
            tokio::select! {
                // A lease gone with its router: nothing renews it again.
                changed = valid.changed() => if changed.is_err() { std::future::pending::<()>().await },
                _ = left => {}
            }
        }
    }
}

/// A held lease; [`Lease::keep`] renews it until stopped.
pub struct Lease {
    js: jetstream::Context,
    bucket: String,
    replicas: usize,
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

/// The lease's value: who holds it and for how long a silence lasts before
/// a waiting router may take it over (the holder's setting, which a waiting
/// router configured shorter must respect).
fn value(holder: &str, ttl: Duration) -> Bytes {
    let renewed = crate::adapters::engine::now_ms();
    let lease_ms = ttl.as_millis() as u64;
    Bytes::from(serde_json::json!({ "holder": holder, "lease_ms": lease_ms, "renewed_at_ms": renewed }).to_string())
}

/// Who holds a lease, by its value.
struct Holder {
    name: String,
    lease: Option<Duration>,
}

fn holder_of(value: &[u8]) -> Holder {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(value).ok();
    let field = |key: &str| parsed.as_ref().and_then(|v| v.get(key).cloned());
    Holder {
        name: field("holder").and_then(|h| h.as_str().map(str::to_string)).unwrap_or_else(|| "?".into()),
        lease: field("lease_ms").and_then(|ms| ms.as_u64()).map(Duration::from_millis),
    }
}

/// Opens the lease bucket, creating it when absent.
async fn open(js: &jetstream::Context, bucket: &str, replicas: usize) -> Result<kv::Store, async_nats::Error> {
    super::open_bucket(js, bucket, "ticket-router: which router uses the state bucket", replicas).await
}

/// A holder cut off like this router may take the NATS client's longest
/// reconnect delay more to renew once the server is back.
const RECONNECT_GRACE: Duration = crate::adapters::nats::MAX_RECONNECT_DELAY;

/// A waiting router's view of a lease held by another.
struct Waiting {
    /// The last change seen.
    revision: u64,
    /// Silence counts from here (may lie ahead: see `acquire`).
    since: Instant,
    /// The longest lease a holder was seen with, at least this router's:
    /// a key that vanished keeps the wait its last holder asked for.
    longest: Duration,
}

/// Whether the lease bucket never held a key: a first start, not a lease
/// that vanished under a holder still at work.
async fn never_written(js: &jetstream::Context, bucket: &str) -> Result<bool, async_nats::Error> {
    let stream = js.get_stream(format!("KV_{bucket}")).await?;
    Ok(stream.cached_info().state.last_sequence == 0)
}

/// What the lease key holds now.
enum Seen {
    /// Never written, or released by a clean stop: free.
    Free(Option<u64>),
    /// Held, or vanished or purged (which a waiter cannot tell from a holder
    /// still at work): a change at this revision (0: none).
    Changed(u64, Option<Holder>),
}

async fn look(kv: &kv::Store) -> Result<Seen, async_nats::Error> {
    Ok(match kv.entry(LEASE_KEY).await? {
        None => Seen::Free(None),
        Some(e) if e.operation == kv::Operation::Delete => Seen::Free(Some(e.revision)),
        Some(e) if e.operation == kv::Operation::Purge => Seen::Changed(e.revision, None),
        Some(e) => Seen::Changed(e.revision, Some(holder_of(&e.value))),
    })
}

impl Lease {
    /// Takes the lease of `state_bucket`, waiting while another router
    /// holds it; None on shutdown. `connected` follows the NATS connection.
    pub async fn acquire(
        js: jetstream::Context,
        state_bucket: &str,
        replicas: usize,
        ttl: Duration,
        mut connected: watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Option<Lease> {
        let (bucket, holder) = (lease_bucket(state_bucket), holder_name());
        let mut waiting: Option<Waiting> = None;
        let pause = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut looked = Instant::now();
        loop {
            let started = Instant::now();
            // Only silence watched while connected counts: after a gap (NATS
            // away, this process stalled, a look answered late) the wait
            // starts again, and the holder gets the longest reconnect delay
            // to renew first, since it could not renew meanwhile either.
            let changed = connected.has_changed().unwrap_or(true);
            let disconnected = !*connected.borrow_and_update() || changed;
            if disconnected || started.duration_since(looked) > pause * 3 {
                waiting.iter_mut().for_each(|w| w.since = started + RECONNECT_GRACE);
            }
            let attempt = async {
                let kv = open(&js, &bucket, replicas).await?;
                let asked = Instant::now();
                let found = look(&kv).await?;
                if asked.elapsed() > pause * 3 {
                    waiting.iter_mut().for_each(|w| w.since = Instant::now() + RECONNECT_GRACE);
                }
                let taken = match found {
                    // Free only if never written (a key that vanished after a
                    // holder was seen, or from a bucket that held one, is a
                    // change to wait out like any other), or released.
                    Seen::Free(None) if waiting.is_none() && never_written(&js, &bucket).await? => {
                        kv.create(LEASE_KEY, value(&holder, ttl)).await.ok()
                    }
                    Seen::Free(Some(revision)) => kv.update(LEASE_KEY, value(&holder, ttl), revision).await.ok(),
                    Seen::Free(None) => wait_out(&kv, &mut waiting, 0, None, &holder, ttl, state_bucket).await,
                    // Our own write, whose answer was lost: held, renewed now.
                    Seen::Changed(revision, Some(named)) if named.name == holder => {
                        kv.update(LEASE_KEY, value(&holder, ttl), revision).await.ok()
                    }
                    Seen::Changed(revision, named) => {
                        wait_out(&kv, &mut waiting, revision, named, &holder, ttl, state_bucket).await
                    }
                };
                Ok::<_, async_nats::Error>(taken.map(|revision| (kv, revision)))
            };
            let outcome = attempt.await;
            if outcome.is_ok() {
                looked = Instant::now();
            }
            match outcome {
                Ok(Some((kv, revision))) => {
                    let valid = watch::channel(started + ttl.mul_f64(2.0 / 3.0)).0;
                    let js = js.clone();
                    return Some(Lease { js, bucket, replicas, kv, holder, revision, ttl, valid });
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    bucket = %bucket,
                    "cannot read the router lease yet; retrying (this user must be able to create and use the \
                     bucket KV_{bucket})"
                ),
            }
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
            // Bounded, so that a server that answers late is a failed
            // renewal that looks at who holds the lease now.
            let renewal = self.kv.update(LEASE_KEY, value(&self.holder, self.ttl), self.revision);
            match tokio::time::timeout(every, renewal).await {
                Ok(Ok(revision)) => self.renewed_at(started, revision),
                Ok(Err(e)) => self.after_failed_renewal(started, e.to_string()).await,
                Err(_) => self.after_failed_renewal(started, format!("no answer within {every:?}")).await,
            }
        }
        // Nothing of this router may write once the next one can start: a
        // write still under way (a last checkpoint given up on) would land
        // on the state the next one is reading.
        self.valid.send_replace(Instant::now());
        // Released only if still ours: the next router starts at once.
        if let Err(e) = self.kv.delete_expect_revision(LEASE_KEY, Some(self.revision)).await {
            tracing::info!(error = %e, "could not release the router lease; the next router waits for it to lapse");
        }
    }

    fn renewed_at(&mut self, started: Instant, revision: u64) {
        self.revision = revision;
        self.valid.send_replace(started + self.ttl.mul_f64(2.0 / 3.0));
    }

    /// A renewal failed. The server away: the next one tries again (writes
    /// wait meanwhile). The key still ours at another revision (an answer
    /// lost on the way): go on from there. The lease bucket or key lost (a
    /// server that lost its store): written again, by revision, so that a
    /// router that took it meanwhile keeps it. Held or released by another
    /// router: this one must stop deciding at once.
    async fn after_failed_renewal(&mut self, started: Instant, error: String) {
        // The bucket opened anew: created again if the server lost it.
        let reopened = async {
            self.kv = open(&self.js, &self.bucket, self.replicas).await?;
            look(&self.kv).await
        };
        let found = match reopened.await {
            Ok(found) => found,
            Err(_) => return tracing::warn!(error = %error, "cannot renew the router lease; retrying"),
        };
        match found {
            // Still ours at another revision (an answer lost on the way):
            // renewed from there at once, by revision, so that a waiting
            // router that took it meanwhile keeps it.
            Seen::Changed(revision, Some(holder)) if holder.name == self.holder => {
                self.revision = revision;
                let now = Instant::now();
                let renewal = self.kv.update(LEASE_KEY, value(&self.holder, self.ttl), revision);
                if let Ok(Ok(revision)) = tokio::time::timeout(self.ttl / 3, renewal).await {
                    self.renewed_at(now, revision);
                }
            }
            Seen::Changed(_, Some(holder)) => exit_taken_over(&holder.name),
            Seen::Free(Some(_)) => exit_taken_over("a router that has stopped since"),
            Seen::Free(None) | Seen::Changed(_, None) => match self.recreate(started).await {
                Ok(()) => {}
                // Written by another router in between: it decides now.
                Err(e) => match look(&self.kv).await {
                    Ok(Seen::Changed(revision, Some(h))) if h.name == self.holder => self.revision = revision,
                    Ok(Seen::Changed(_, Some(h))) => {
                        exit_taken_over(&format!("{} (it wrote the lost lease first)", h.name))
                    }
                    _ => tracing::warn!(error = %e, "cannot write the router lease again; retrying"),
                },
            },
        }
    }

    /// Writes the lease again after its bucket or key was lost.
    async fn recreate(&mut self, started: Instant) -> Result<(), async_nats::Error> {
        let revision = match look(&self.kv).await? {
            Seen::Changed(revision, None) => self.kv.update(LEASE_KEY, value(&self.holder, self.ttl), revision).await?,
            Seen::Free(None) => self.kv.create(LEASE_KEY, value(&self.holder, self.ttl)).await?,
            Seen::Free(Some(_)) => exit_taken_over("a router that has stopped since"),
            Seen::Changed(_, Some(h)) if h.name != self.holder => exit_taken_over(&h.name),
            // Our own earlier write, landed late: renewed by revision now.
            Seen::Changed(revision, Some(_)) => {
                self.kv.update(LEASE_KEY, value(&self.holder, self.ttl), revision).await?
            }
        };
        tracing::warn!(bucket = %self.bucket, "the router lease was lost from the server; written again");
        self.renewed_at(started, revision);
        Ok(())
    }
}

/// A waiting router's look at a lease that is held (or vanished): takes it
/// when it has not changed for the longest lease seen, else notes the change.
async fn wait_out(
    kv: &kv::Store,
    waiting: &mut Option<Waiting>,
    revision: u64,
    named: Option<Holder>,
    holder: &str,
    ttl: Duration,
    state_bucket: &str,
) -> Option<u64> {
    let theirs = named.as_ref().and_then(|h| h.lease).unwrap_or(ttl);
    let named = named.map_or_else(|| "?".to_string(), |h| h.name);
    let Some(w) = waiting else {
        let silence = theirs.max(ttl);
        tracing::warn!(
            bucket = state_bucket,
            holder = %named,
            lease = ?silence,
            "another router uses this state bucket, or stopped without releasing it (a crash); waiting \
             until it releases the lease or leaves it unrenewed for {silence:?}. If a second router is \
             running by mistake, stop one: a second tenant needs nats.state_bucket, nats.stream and \
             nats.consumer of its own"
        );
        *waiting = Some(Waiting { revision, since: Instant::now(), longest: silence });
        return None;
    };
    w.longest = w.longest.max(theirs);
    if w.revision != revision {
        // Renewed (or vanished) since: still to wait out.
        (w.revision, w.since) = (revision, Instant::now());
        return None;
    }
    if w.since.elapsed() < w.longest {
        return None;
    }
    let taken = if revision == 0 {
        kv.create(LEASE_KEY, value(holder, ttl)).await.ok()
    } else {
        kv.update(LEASE_KEY, value(holder, ttl), revision).await.ok()
    };
    if taken.is_some() {
        tracing::warn!(
            previous = %named,
            silent_for = ?w.since.elapsed(),
            "took over the state bucket from a router that stopped renewing its lease"
        );
    }
    taken
}

fn exit_taken_over(by: &str) -> ! {
    tracing::error!(
        by,
        "another router took over the state bucket while this one could not renew its lease (cut off from NATS \
         or paused for longer than nats.lease); exiting so that only one router decides"
    );
    std::process::exit(3);
}
