//! `ticket-router serve`: wires the engine, the journal, NATS, gRPC and
//! metrics together and shuts them down in order. Takes already-bound
//! listeners and a cancellation token, so tests and the binary drive it the
//! same way.
//!
//! Start: connect, read the recorded state and rebuild the core (timers go on
//! from the recorded times), record what that catch-up changed, then serve.
//! Stop: no new input, the last decisions recorded, their effects flushed.

use super::engine::{now_ms, EffectSink, Engine, EngineHandle};
use super::grpc::{self, OfferHub};
use super::metrics::{self, MetricsSink};
use super::nats::{self, inbound, outbound::NatsPublisher, Subjects};
use super::persistence::journal::{self, JournalEnd};
use super::persistence::lease::Lease;
use super::persistence::{StateStore, StoreError, Write};
use crate::config::Config;
use crate::core::Router;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Settings(#[from] crate::core::SettingsError),
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the state journal stopped while the router was running (the journal or the routing engine failed: see the \
         error above); start the router again: it restores the recorded state, and NATS delivers again whatever \
         was not recorded"
    )]
    JournalStopped,
}

/// The sockets the service answers on.
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: TcpListener,
}

/// Something to tell once the router consumes inbound traffic.
pub type OnReady = Box<dyn FnOnce() + Send>;

/// Runs the service until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    on_ready: OnReady,
) -> Result<(), ServeError> {
    // A key or certificate that cannot work is reported now, not after NATS
    // is reached and the state restored (which may never happen).
    grpc::GrpcServer::check_keys(&config.grpc)?;
    let prometheus = metrics::install()?;
    // Scrapes are answered from the start, so a router waiting for NATS or
    // restoring shows `ticket_router_serving 0` rather than a failed scrape.
    let front_stop = CancellationToken::new();
    let _stop_front_on_return = front_stop.clone().drop_guard();
    // True until an engine runs and stops ticking (see `watchdog`).
    let (engine_alive_tx, engine_alive) = tokio::sync::watch::channel(true);
    let metrics_task =
        tokio::spawn(metrics_task(listeners.metrics, prometheus, engine_alive.clone(), front_stop.clone()));
    let subjects = Subjects::new(&config.nats.prefix);
    let (client, connected) = nats::connect(&config.nats).await?;
    // Wait for the connection first, so that a server that is not there is
    // reported as such (above, on each attempt), not as one without JetStream.
    let mut first = connected.clone();
    tokio::select! {
        _ = first.wait_for(|up| *up) => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    let js = async_nats::jetstream::new(client.clone());
    let Some(store) = retry("open the state bucket", &shutdown, || StateStore::open(js.clone(), &config.nats)).await
    else {
        return Ok(());
    };
    // One router per bucket: wait for the lease before reading the state
    // another router may still be writing.
    let nats = &config.nats;
    let acquired =
        Lease::acquire(js.clone(), &nats.state_bucket, nats.replicas, nats.lease, connected.clone(), &shutdown);
    let Some(lease) = acquired.await else { return Ok(()) };
    let store = store.fenced(lease.fence());
    let lease_stop = CancellationToken::new();
    let release_on_return = lease_stop.clone().drop_guard();
    let lease_task = tokio::spawn(lease.keep(lease_stop));
    let (router, catch_up, replayed, journal_last) = match restore(&config, &store, &shutdown).await {
        Ok(Some(restored)) => restored,
        other => {
            release(release_on_return, lease_task).await;
            return other.map(drop);
        }
    };

    let hub = OfferHub::new();
    let (publisher, outgoing) = NatsPublisher::new(subjects.clone(), config.nats.outbound_encoding);
    let mut sinks: Vec<Box<dyn EffectSink>> =
        vec![Box::new(hub.clone()), Box::new(publisher), Box::new(MetricsSink::default())];
    let (journal_tx, journal_rx) = mpsc::unbounded_channel();
    let mut router = router;
    let changes = router.take_changes();
    let releases = sinks.iter_mut().filter_map(|s| s.prepare(now_ms(), &catch_up, &router)).collect();
    let (engine, handle) = Engine::new(router, sinks);
    let mut engine = engine.on_decision(metrics::observe_decision).with_journal(journal_tx);
    engine.record_restored(changes, releases);
    // Unusable keys or certificates stop the start, before anything runs.
    let grpc_server = match grpc::GrpcServer::new(handle.clone(), hub.clone(), &config.grpc) {
        Ok(server) => server,
        Err(e) => {
            release(release_on_return, lease_task).await;
            return Err(e.into());
        }
    };

    let tasks = TaskTracker::new();
    let engine_stop = CancellationToken::new();
    let recording = engine.recording();
    if let Err(e) = super::watchdog::spawn(engine.beats(), engine_alive_tx) {
        tracing::warn!(error = %e, "cannot start the engine watchdog; a stuck engine will not be reported");
    }
    let engine_task = tasks.spawn(engine.run(engine_stop.clone()));
    // Stopped by `journal_stopped` too, should the journal end first.
    let shutdown = shutdown.child_token();
    let journal = tokio::spawn(journal::run(store, replayed, journal_last, journal_rx, handle.clone()));
    let journal_task = tasks.spawn(journal_stopped(journal, engine_stop.clone(), shutdown.clone()));
    let publisher_task =
        tasks.spawn(nats::outbound::run_publisher(client.clone(), config.nats.clone(), outgoing, handle.clone()));
    let health = grpc::Health::new().await;
    tasks.spawn(grpc_task(grpc_server, listeners.grpc, health.clone(), front_stop.clone()));

    let serving = Serving { connected, recording, engine_alive };
    consume(&config, client.clone(), serving, handle.clone(), subjects, &health, &shutdown, on_ready).await;

    // Order: no new input, then the last decisions recorded, then their effects.
    tracing::debug!("inbound stopped");
    health.set_serving(false).await;
    front_stop.cancel();
    hub.close();
    engine_stop.cancel();
    let _ = engine_task.await;
    tracing::debug!("engine stopped");
    drop(handle);
    let journal_failed = journal_task.await.unwrap_or(true);
    tracing::debug!("journal flushed");
    let _ = publisher_task.await;
    tracing::debug!("publisher flushed");
    release(release_on_return, lease_task).await;
    tasks.close();
    // Everything is recorded and sent; callers still connected get a moment.
    let front_closed = async {
        tasks.wait().await;
        let _ = metrics_task.await;
    };
    if tokio::time::timeout(Duration::from_secs(2), front_closed).await.is_err() {
        tracing::info!("closing the remaining client connections");
    }
    if journal_failed {
        return Err(ServeError::JournalStopped);
    }
    Ok(())
}

/// Waits for the journal task; whether it ended before the engine was told
/// to stop (a panic of the journal, or of the engine whose channel it reads:
/// a bug). Decisions made after that would go unrecorded
/// while their messages are acknowledged as duplicates on redelivery, so
/// the router stops (`stop`), and the next start restores what was recorded.
async fn journal_stopped(
    journal: tokio::task::JoinHandle<JournalEnd>,
    engine_stop: CancellationToken,
    stop: CancellationToken,
) -> bool {
    let ended = journal.await;
    if engine_stop.is_cancelled() && ended.as_ref().is_ok_and(|end| *end == JournalEnd::Drained) {
        return false;
    }
    tracing::error!(
        panicked = ended.is_err(),
        "the state journal stopped while the router was running; stopping, so that the next start restores the \
         recorded state and NATS delivers again what was not recorded"
    );
    stop.cancel();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_journal_that_ends_before_the_engine_stops_stops_the_router() {
        let (engine_stop, stop) = (CancellationToken::new(), CancellationToken::new());
        let panicked = tokio::spawn(async { panic!("a bug in the journal") });
        assert!(journal_stopped(panicked, engine_stop.clone(), stop.clone()).await);
        assert!(stop.is_cancelled());

        let stop = CancellationToken::new();
        let ended = tokio::spawn(async { JournalEnd::Drained });
        assert!(journal_stopped(ended, engine_stop.clone(), stop.clone()).await, "ended early, without a panic");
        assert!(stop.is_cancelled());

        // The usual end: the engine stopped, then the journal flushed and ended.
        let stop = CancellationToken::new();
        engine_stop.cancel();
        let drained = tokio::spawn(async { JournalEnd::Drained });
        assert!(!journal_stopped(drained, engine_stop.clone(), stop.clone()).await);
        assert!(!stop.is_cancelled());

        // Another router's write found while stopping is still an error.
        let taken = tokio::spawn(async { JournalEnd::Halted });
        assert!(journal_stopped(taken, engine_stop, stop.clone()).await);
        assert!(stop.is_cancelled());
    }
}

/// Ends the lease task, which releases the lease, so that the next router
/// starts at once; a release that cannot reach the server is given up.
async fn release(guard: tokio_util::sync::DropGuard, task: tokio::task::JoinHandle<()>) {
    guard.disarm().cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
}

/// Reads the recorded state and rebuilds the core from it.
async fn restore(
    config: &Config,
    store: &StateStore,
    shutdown: &CancellationToken,
) -> Result<Option<(Router, Vec<crate::core::Effect>, Vec<Write>, u64)>, ServeError> {
    let started = Instant::now();
    let Some(loaded) = retry("read the recorded state", shutdown, || store.load_with_journal()).await else {
        return Ok(None);
    };
    let (restored, replayed, journal_last) = (loaded.restored, loaded.replayed, loaded.journal_last);
    let (inquiries, agents) = (restored.inquiries.len(), restored.agents.len());
    let (mut router, catch_up) = Router::restore(config.routing(), restored, now_ms())?;
    for note in router.take_restore_notes() {
        tracing::warn!(note = %crate::adapters::redact::Redacted(&note), "the recorded state does not fit the configuration");
    }
    let counts = router.state_counts();
    tracing::info!(
        inquiries,
        agents,
        waiting = counts.waiting,
        offered = counts.offered,
        active = counts.active,
        took_ms = started.elapsed().as_millis() as u64,
        "restored the routing state"
    );
    Ok(Some((router, catch_up, replayed, journal_last)))
}

/// Retries `attempt` with backoff until it succeeds or shutdown (None).
async fn retry<T, E, F, Fut>(what: &str, shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        // Raced with shutdown: a request to a server that is away waits for
        // it, and stopping must not.
        let outcome = tokio::select! {
            outcome = attempt() => outcome,
            _ = shutdown.cancelled() => return None,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "cannot {what} yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return None,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What health follows: the connection to NATS, whether decisions are
/// recorded (a hung broker keeps the connection but records nothing), and
/// whether the engine still ticks (a command that never ends stops it).
#[derive(Clone)]
struct Serving {
    connected: tokio::sync::watch::Receiver<bool>,
    recording: tokio::sync::watch::Receiver<bool>,
    engine_alive: tokio::sync::watch::Receiver<bool>,
}

impl Serving {
    fn now(&self) -> bool {
        *self.connected.borrow() && *self.recording.borrow() && *self.engine_alive.borrow()
    }

    /// Waits for any to change; false once the connection or the recording
    /// cannot. A watchdog that could not start (or ended with the engine)
    /// never changes again, and must not stop health from following NATS.
    async fn changed(&mut self) -> bool {
        tokio::select! {
            c = self.connected.changed() => c.is_ok(),
            r = self.recording.changed() => r.is_ok(),
            Ok(()) = self.engine_alive.changed() => true,
        }
    }
}

/// Sets up the stream and consumes until shutdown, retrying while NATS is
/// away; health follows the connection and whether decisions are recorded.
#[allow(clippy::too_many_arguments)]
async fn consume(
    config: &Config,
    client: async_nats::Client,
    serving: Serving,
    engine: EngineHandle,
    subjects: Subjects,
    health: &grpc::Health,
    shutdown: &CancellationToken,
    on_ready: OnReady,
) {
    let js = async_nats::jetstream::new(client.clone());
    let mut on_ready = Some(on_ready);
    let mut connected = serving.connected.clone();
    while !shutdown.is_cancelled() {
        let Some(consumer) =
            retry("set up the inbound stream", shutdown, || nats::setup_inbound(&js, &config.nats)).await
        else {
            break;
        };
        let serving_now = serving.now();
        health.set_serving(serving_now).await;
        if let Some(ready) = on_ready.take() {
            ready();
        }
        let stop = shutdown.child_token();
        let watch = {
            let (stop, health) = (stop.clone(), health.clone());
            let mut serving = serving.clone();
            tokio::spawn(async move {
                // From the value health was set to, so no change between is missed.
                let mut was = serving_now;
                while serving.changed().await {
                    let up = serving.now();
                    health.set_serving(up).await;
                    if up == was {
                        continue;
                    }
                    was = up;
                    match (up, *serving.connected.borrow(), *serving.engine_alive.borrow()) {
                        (true, ..) => tracing::info!("routing and recording decisions again; health is SERVING"),
                        (false, _, false) => {} // the watchdog said why
                        (false, false, _) => {
                            tracing::warn!("lost the connection to NATS; health is NOT_SERVING until it is back")
                        }
                        (false, true, _) => tracing::warn!(
                            "NATS keeps the connection but records nothing (a hung server, or one refusing writes: \
                             see the warnings above); health is NOT_SERVING until decisions are recorded again"
                        ),
                    }
                }
                let _ = stop;
            })
        };
        if let Err(e) = inbound::run(
            consumer,
            js.clone(),
            engine.clone(),
            subjects.clone(),
            &config.nats.deadletter_stream,
            stop.clone(),
        )
        .await
        {
            tracing::warn!(error = %e, "inbound consumer stopped; setting it up again");
        }
        watch.abort();
        if !shutdown.is_cancelled() {
            health.set_serving(false).await;
            tokio::select! {
                _ = connected.wait_for(|up| *up) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }
}

async fn grpc_task(server: grpc::GrpcServer, listener: TcpListener, health: grpc::Health, stop: CancellationToken) {
    if let Err(e) = server.serve(listener, health, stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the gRPC server stopped");
    }
}

async fn metrics_task(
    listener: TcpListener,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    engine_alive: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
) {
    if let Err(e) = metrics::serve(listener, handle, engine_alive, stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}
