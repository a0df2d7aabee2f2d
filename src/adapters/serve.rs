//! `ticket-router serve`: wires the engine, NATS, gRPC and metrics together
//! and shuts them down in order. Takes already-bound listeners and a
//! cancellation token, so tests and the binary drive it the same way.

use super::engine::{Engine, EngineHandle};
use super::grpc::{self, OfferHub};
use super::metrics::{self, MetricsSink};
use super::nats::{self, inbound, outbound::NatsPublisher, Subjects};
use crate::config::Config;
use crate::core::Router;
use std::time::Duration;
use tokio::net::TcpListener;
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
    let prometheus = metrics::install()?;
    let router = Router::new(config.routing())?;
    let subjects = Subjects::new(&config.nats.prefix);
    let client = nats::connect(&config.nats).await?;
    let hub = OfferHub::new();
    let (publisher, outgoing) = NatsPublisher::new(subjects.clone());
    let sinks: Vec<Box<dyn super::engine::EffectSink>> =
        vec![Box::new(hub.clone()), Box::new(publisher), Box::new(MetricsSink)];
    let (engine, handle) = Engine::new(router, sinks);
    let engine = engine.on_decision(metrics::observe_decision);
    // Unusable keys or certificates stop the start, before anything runs.
    let grpc_server = grpc::GrpcServer::new(handle.clone(), hub.clone(), &config.grpc)?;

    let tasks = TaskTracker::new();
    let engine_stop = CancellationToken::new();
    let engine_task = tasks.spawn(engine.run(engine_stop.clone()));
    let publisher_task = tasks.spawn(nats::outbound::run_publisher(client.clone(), outgoing));
    let front_stop = CancellationToken::new();
    let health = grpc::Health::new().await;
    tasks.spawn(grpc_task(grpc_server, listeners.grpc, health.clone(), front_stop.clone()));
    tasks.spawn(metrics_task(listeners.metrics, prometheus, front_stop.clone()));

    consume(&config, client.clone(), handle.clone(), subjects, &health, &shutdown, on_ready).await;

    // Order: no new input, then the last decisions, then their effects.
    health.set_serving(false).await;
    front_stop.cancel();
    hub.close();
    engine_stop.cancel();
    let _ = engine_task.await;
    drop(handle);
    let _ = publisher_task.await;
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Sets up the stream and consumes until shutdown, retrying while NATS is away.
async fn consume(
    config: &Config,
    client: async_nats::Client,
    engine: EngineHandle,
    subjects: Subjects,
    health: &grpc::Health,
    shutdown: &CancellationToken,
    on_ready: OnReady,
) {
    let js = async_nats::jetstream::new(client.clone());
    let mut on_ready = Some(on_ready);
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let consumer = match nats::setup_inbound(&js, &config.nats).await {
            Ok(consumer) => consumer,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "NATS is not ready; retrying");
                health.set_serving(false).await;
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        health.set_serving(true).await;
        if let Some(ready) = on_ready.take() {
            ready();
        }
        if let Err(e) = inbound::run(consumer, client.clone(), engine.clone(), subjects.clone(), shutdown.clone()).await
        {
            tracing::warn!(error = %e, "inbound consumer stopped; setting it up again");
            health.set_serving(false).await;
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
    stop: CancellationToken,
) {
    if let Err(e) = metrics::serve(listener, handle, stop.cancelled_owned()).await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
}
