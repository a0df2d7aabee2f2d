//! The gRPC server of SPEC section 6: `AgentDesk`, `Handoff` and `Ops`
//! behind bearer-JWT authentication, plus `grpc.health.v1.Health` and server
//! reflection, optionally over TLS.
//!
//! Every service only converts between wire messages and core commands or
//! views; errors map to status codes in one place (`status.rs`). Nothing
//! here routes, and nothing here reads the clock except to resolve "now" in
//! an override request.
//!
//! * [`offers`] — the [`OfferHub`] sink streaming offers to desktops.
//! * [`auth`] — the [`Authenticator`] interceptor and the caller's actor.
//! * [`agent_desk`], [`handoff`], [`ops`] — the three services.
//!
//! Wiring: create an [`OfferHub`], give a clone to the engine as a sink and
//! one to [`serve`] (or [`GrpcServer::new`], which reports bad key or
//! certificate files before anything starts). The caller owns the
//! [`Health`] and reports SERVING once the router consumes its input.

pub mod agent_desk;
pub mod auth;
pub mod handoff;
pub mod offers;
pub mod ops;
mod status;

pub use auth::{Authenticator, Caller};
pub use offers::{OfferHub, OfferStream, DESKTOPS_PER_AGENT};

use crate::adapters::engine::EngineHandle;
use crate::config::{GrpcSettings, GrpcTls};
use crate::proto::agent_desk_server::{self, AgentDeskServer};
use crate::proto::handoff_server::{self, HandoffServer};
use crate::proto::ops_server::{self, OpsServer};
use agent_desk::AgentDeskService;
use handoff::HandoffService;
use ops::OpsService;
use std::future::Future;
use std::path::PathBuf;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::Status;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

/// The application services, by their full gRPC names.
pub const SERVICES: [&str; 3] =
    [agent_desk_server::SERVICE_NAME, handoff_server::SERVICE_NAME, ops_server::SERVICE_NAME];

/// Why the gRPC server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot read {what} `{}`: {source}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("grpc.auth: {0}")]
    Auth(String),
    #[error("grpc.tls: the certificate or key is not usable: {0}")]
    Tls(#[source] tonic::transport::Error),
    #[error("gRPC reflection could not load the descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// The `grpc.health.v1.Health` statuses: the overall server (`""`) and the
/// three application services move together. Starts NOT_SERVING; the caller
/// reports SERVING once the router consumes its input, and NOT_SERVING when
/// it stops doing so. Cheap to clone.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// Every status NOT_SERVING.
    pub async fn new() -> Health {
        let health = Health { reporter: HealthReporter::new() };
        health.set_serving(false).await;
        health
    }

    /// Reports the server and its services SERVING or NOT_SERVING.
    pub async fn set_serving(&self, serving: bool) {
        let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
        crate::adapters::metrics::set_serving(serving);
        for service in SERVICES.into_iter().chain([""]) {
            self.reporter.set_service_status(service, status).await;
        }
    }

    /// The underlying reporter, for finer-grained statuses.
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }
}

/// The configured server: keys and certificates read and checked, ready to
/// serve on a bound listener.
pub struct GrpcServer {
    engine: EngineHandle,
    hub: OfferHub,
    auth: Authenticator,
    builder: Server,
    keepalive: Option<std::time::Duration>,
}

impl GrpcServer {
    /// Loads the token key and TLS identity as [`new`](Self::new) does, to
    /// report an unusable one before anything else starts (and in
    /// `check-config --files`).
    pub fn check_keys(settings: &GrpcSettings) -> Result<(), GrpcError> {
        prepare(settings).map(|_| ())
    }

    /// Reads the key and certificate files named in `settings` and checks
    /// them. `hub` must be the hub the engine delivers effects to.
    pub fn new(engine: EngineHandle, hub: OfferHub, settings: &GrpcSettings) -> Result<GrpcServer, GrpcError> {
        let (auth, builder) = prepare(settings)?;
        let keepalive = Some(settings.keepalive);
        Ok(GrpcServer { engine, hub, auth, builder, keepalive })
    }

    /// Serves on `listener` until `shutdown` completes, then reports
    /// NOT_SERVING, ends the desktops' offer streams (closing the hub) and
    /// waits for the calls in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        health: Health,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), GrpcError> {
        let GrpcServer { engine, hub, auth, mut builder, keepalive } = self;
        if !auth.is_enabled() {
            tracing::warn!(
                "gRPC AUTHENTICATION IS OFF (grpc.auth.mode = \"none\"): every caller may act as any agent and as \
                 an admin. For local demos only; never use this in production"
            );
        }
        let reflection_builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        // v1alpha too: older grpcurl releases and many tools ask only that one.
        let (reflection, reflection_v1alpha) =
            (reflection_builder().build_v1()?, reflection_builder().build_v1alpha()?);
        let health_service = HealthServer::new(HealthService::from_health_reporter(health.reporter.clone()));
        let stopping = {
            let hub = hub.clone();
            async move {
                shutdown.await;
                health.set_serving(false).await;
                hub.close();
                tracing::info!("gRPC server stopping");
            }
        };
        let desk = AgentDeskServer::with_interceptor(AgentDeskService::new(engine.clone(), hub), auth.clone());
        let handoff = HandoffServer::with_interceptor(HandoffService::new(engine.clone()), auth.clone());
        let ops = OpsServer::with_interceptor(OpsService::new(engine), auth);
        let router = builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(desk)
            .add_service(handoff)
            .add_service(ops);
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(keepalive);
        router.serve_with_incoming_shutdown(incoming, stopping).await.map_err(GrpcError::Serve)
    }
}

/// Builds the server from `settings` and serves on `listener` until
/// `shutdown` completes; see [`GrpcServer`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: EngineHandle,
    hub: OfferHub,
    settings: &GrpcSettings,
    health: Health,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    GrpcServer::new(engine, hub, settings)?.serve(listener, health, shutdown).await
}

/// The authenticator and a server builder with keepalive and TLS set: the
/// key and the PEM are parsed here.
fn prepare(settings: &GrpcSettings) -> Result<(Authenticator, Server), GrpcError> {
    let auth = Authenticator::from_settings(&settings.auth)?;
    let keepalive = Some(settings.keepalive);
    let mut builder = Server::builder()
        .http2_keepalive_interval(keepalive)
        .http2_keepalive_timeout(keepalive)
        .tcp_keepalive(keepalive);
    if let Some(tls) = tls_config(&settings.tls)? {
        builder = builder.tls_config(tls).map_err(GrpcError::Tls)?;
    }
    Ok((auth, builder))
}

fn tls_config(tls: &GrpcTls) -> Result<Option<ServerTlsConfig>, GrpcError> {
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else { return Ok(None) };
    let read = |path: &PathBuf, what| {
        std::fs::read(path).map_err(|source| GrpcError::ReadFile { what, path: path.clone(), source })
    };
    let identity = Identity::from_pem(read(cert, "grpc.tls.cert_file")?, read(key, "grpc.tls.key_file")?);
    Ok(Some(ServerTlsConfig::new().identity(identity)))
}

/// `value`, or INVALID_ARGUMENT naming the empty field.
fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("`{field}` is required")));
    }
    Ok(value)
}

/// An inquiry id in request field `field`: 1-128 characters of
/// `[A-Za-z0-9._:-]`, as inquiries are published with.
fn inquiry_id<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = required(field, value)?;
    if !crate::adapters::codec::valid_id(value) {
        return Err(Status::invalid_argument(format!(
            "{field} `{}` is not an inquiry id: inquiry ids are 1-128 letters, digits, `.`, `_`, `:` or `-`",
            value.chars().take(140).collect::<String>()
        )));
    }
    Ok(value)
}

/// A group id in request field `field` (at most 128 bytes; whether it is
/// configured is the core's to say).
fn group_id<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = required(field, value)?;
    if value.len() > 128 {
        return Err(Status::invalid_argument(format!(
            "{field} has {} bytes; group ids are at most 128 (see GetQueues for the configured ones)",
            value.len()
        )));
    }
    Ok(value)
}

/// The request's `agent_id`, which must be 1-128 characters of
/// `[A-Za-z0-9_:-]`: it becomes a NATS subject token
/// (`<prefix>.assignments.<agent_id>`) and a key in the state bucket.
fn agent_id(value: &str) -> Result<&str, Status> {
    agent_token("agent_id", value)
}

/// An agent id in request field `field`: it must be usable as a NATS
/// subject token and a state key.
fn agent_token<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = required(field, value)?;
    let token = value.len() <= 128 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b));
    if !token {
        return Err(Status::invalid_argument(format!(
            "{field} `{}` is not usable: use 1-128 letters, digits, `_`, `-` or `:` (no dots or spaces: it becomes a NATS subject token)",
            value.chars().take(140).collect::<String>()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::engine::Engine;
    use crate::core::{Router, RoutingSettings};

    fn server(tls: GrpcTls) -> Result<GrpcServer, GrpcError> {
        let (_, engine) = Engine::new(Router::new(RoutingSettings::default()).unwrap(), Vec::new());
        let auth = crate::config::GrpcAuth { mode: "none".into(), ..Default::default() };
        GrpcServer::new(engine, OfferHub::new(), &GrpcSettings { tls, auth, ..GrpcSettings::default() })
    }

    #[test]
    fn unusable_tls_files_are_reported_before_serving() {
        let missing =
            GrpcTls { cert_file: Some("/nonexistent/cert.pem".into()), key_file: Some("/nonexistent/key".into()) };
        assert!(matches!(server(missing), Err(GrpcError::ReadFile { what: "grpc.tls.cert_file", .. })));
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let garbage = GrpcTls { cert_file: Some(cert), key_file: Some(key) };
        assert!(matches!(server(garbage), Err(GrpcError::Tls(_))));
        assert!(server(GrpcTls::default()).is_ok(), "plain text without TLS files");
    }
}
