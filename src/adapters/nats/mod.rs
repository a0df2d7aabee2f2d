//! NATS: the connection, the JetStream stream and durable consumer for inbound
//! inquiries and cancellations, and the subjects of SPEC section 5.
//!
//! * [`inbound`] — consume, decode, feed the engine, ack or dead-letter.
//! * [`outbound`] — the effect sink that publishes offers, events,
//!   deflections and level changes.

pub mod inbound;
pub mod outbound;
mod url;

pub use url::{url_credentials, with_url_credentials, without_credentials, without_password};

use crate::config::NatsSettings;
use async_nats::jetstream::{self, consumer, stream};
use std::time::Duration;
use tokio::sync::watch;

/// How long an inbound message may stay unacknowledged before redelivery.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Unacknowledged messages in flight at once.
const MAX_ACK_PENDING: i64 = 20_000;

/// Why NATS could not be set up; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot read NATS credentials `{path}`: {source}; check nats.credentials_file / nats.nkey_seed_file")]
    Credentials { path: String, source: std::io::Error },
    #[error("cannot read nats.tls.{key} `{path}`: {source}; check the path (and that the file is mounted)")]
    TlsFile { key: &'static str, path: String, source: std::io::Error },
    #[error("cannot connect to NATS at {url}: {source}; check nats.url and that nats-server is running with JetStream (-js)")]
    Connect { url: String, source: async_nats::ConnectError },
    #[error("cannot create or update JetStream stream `{stream}`: {detail}; the server must run with JetStream enabled (-js), version 2.10.23 or newer")]
    Stream { stream: String, detail: String },
    #[error("cannot create durable consumer `{consumer}` on `{stream}`: {detail}")]
    Consumer { stream: String, consumer: String, detail: String },
}

/// The subjects of one tenant prefix.
#[derive(Clone, Debug)]
pub struct Subjects {
    pub prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (e.g. `support`).
    pub fn new(prefix: &str) -> Subjects {
        Subjects { prefix: prefix.to_string() }
    }

    /// What the inbound stream captures; the bare subjects too, so a message
    /// without a shop id is dead-lettered rather than never seen.
    pub fn inbound(&self) -> Vec<String> {
        let p = &self.prefix;
        vec![
            format!("{p}.inquiries"),
            format!("{p}.inquiries.>"),
            format!("{p}.cancellations"),
            format!("{p}.cancellations.>"),
        ]
    }

    pub fn inquiries(&self, shop: &str) -> String {
        format!("{}.inquiries.{shop}", self.prefix)
    }

    pub fn cancellations(&self, shop: &str) -> String {
        format!("{}.cancellations.{shop}", self.prefix)
    }

    pub fn assignments(&self, agent: &str) -> String {
        format!("{}.assignments.{agent}", self.prefix)
    }

    pub fn events(&self, shop: &str) -> String {
        format!("{}.events.{shop}", self.prefix)
    }

    pub fn deflections(&self, shop: &str) -> String {
        format!("{}.deflections.{shop}", self.prefix)
    }

    pub fn levels(&self) -> String {
        format!("{}.levels", self.prefix)
    }

    pub fn deadletter(&self) -> String {
        format!("{}.deadletter", self.prefix)
    }
}

/// The longest pause between two attempts to reach NATS again.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Connects with the configured credentials and TLS, and reconnects forever
/// with backoff; the watch says whether the connection is up now.
pub async fn connect(settings: &NatsSettings) -> Result<(async_nats::Client, watch::Receiver<bool>), NatsError> {
    let (up_tx, up_rx) = watch::channel(false);
    let mut options = async_nats::ConnectOptions::new()
        .name("ticket-router")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * 2u64.saturating_pow(attempts.min(6) as u32)).min(MAX_RECONNECT_DELAY)
        })
        .retry_on_initial_connect()
        .event_callback({
            let url = without_password(&settings.url);
            move |event| {
                let (up_tx, url) = (up_tx.clone(), url.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%url, "connected to NATS");
                            let _ = up_tx.send(true);
                        }
                        async_nats::Event::Disconnected => {
                            let _ = up_tx.send(false);
                        }
                        // Until NATS answers nothing is routed: say where the
                        // router is trying, on every failed attempt.
                        async_nats::Event::ClientError(e) if e.to_string().contains("authori") => tracing::warn!(
                            %url, error = %e,
                            "NATS refused the router's credentials; retrying. Set nats.token, \
                             nats.credentials_file, nats.nkey_seed_file or a user and password in \
                             nats.url to what the server expects"
                        ),
                        async_nats::Event::ClientError(e) => tracing::warn!(
                            %url, error = %e,
                            "cannot reach NATS; retrying. Check nats.url (TICKET_ROUTER_NATS_URL) and that the server runs"
                        ),
                        async_nats::Event::ServerError(e) => {
                            tracing::warn!(%url, error = %e, "NATS reported an error (permissions of the router's user?)")
                        }
                        other => tracing::debug!(event = %other, "NATS connection event"),
                    }
                }
            }
        });
    if let Some(path) = &settings.credentials_file {
        options = options
            .credentials_file(path)
            .await
            .map_err(|source| NatsError::Credentials { path: path.display().to_string(), source })?;
    }
    if let Some(path) = &settings.nkey_seed_file {
        let seed = std::fs::read_to_string(path)
            .map_err(|source| NatsError::Credentials { path: path.display().to_string(), source })?;
        options = options.nkey(seed.trim().to_string());
    }
    options = with_url_credentials(options, &settings.url);
    if let Some(token) = &settings.token {
        options = options.token(token.expose().to_string());
    }
    let tls = &settings.tls;
    // Checked here: the client would only log a TLS error on every retry
    // (or, with TLS not required, connect without the configured CA).
    for (key, path) in [("ca_file", &tls.ca_file), ("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
        if let Some(path) = path {
            std::fs::File::open(path).map_err(|source| NatsError::TlsFile {
                key,
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    if let Some(ca) = &tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    options = options.require_tls(tls.required);
    let client = options
        // Without the user and password: the client logs the address it
        // dials (at debug), and has them from the options anyway.
        .connect(url::without_credentials(&settings.url).as_str())
        .await
        .map_err(|source| NatsError::Connect { url: without_password(&settings.url), source })?;
    Ok((client, up_rx))
}

/// How long the dead-letter and deflection streams keep a message, as
/// created; ops may change it on the stream (`nats stream edit`), which is kept.
const KEPT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether the server says it has no such stream (rather than not answering).
pub(crate) fn stream_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(js) if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Whether the server says it has no stream `name` (an unanswered lookup is
/// not taken for one).
pub(crate) async fn stream_absent(js: &jetstream::Context, name: &str) -> bool {
    js.get_stream(name).await.err().is_some_and(|e| stream_not_found(&e))
}

/// Creates, if absent, the streams that keep what the router publishes for
/// others to take later: dead letters (a plain publish nobody hears would be
/// lost) and deflections (a bot that was restarting must still find them).
pub async fn setup_kept_streams(js: &jetstream::Context, settings: &NatsSettings) -> Result<(), NatsError> {
    let subjects = Subjects::new(&settings.prefix);
    let kept = [
        (
            &settings.deadletter_stream,
            subjects.deadletter(),
            "rejected inbound messages, the reason in Ticket-Router-Error",
        ),
        (&settings.deflection_stream, subjects.deflections(">"), "inquiries handed to the self-service bot"),
    ];
    for (name, subject, what) in kept {
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![subject],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: KEPT_MAX_AGE,
            duplicate_window: Duration::from_secs(120),
            num_replicas: settings.replicas,
            description: Some(format!("ticket-router: {what}")),
            ..Default::default()
        };
        let wanted = config.subjects[0].clone();
        let stream = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| NatsError::Stream { stream: name.clone(), detail: e.to_string() })?;
        let subjects = &stream.cached_info().config.subjects;
        if !subjects.contains(&wanted) {
            let detail = format!(
                "it exists over {subjects:?}, not `{wanted}` (another prefix?); name another stream in the \
                 configuration or add the subject to it"
            );
            return Err(NatsError::Stream { stream: name.clone(), detail });
        }
    }
    Ok(())
}

/// Creates or updates the inbound stream and its durable pull consumer, and
/// creates the kept streams if absent.
pub async fn setup_inbound(
    js: &jetstream::Context,
    settings: &NatsSettings,
) -> Result<consumer::PullConsumer, NatsError> {
    setup_kept_streams(js, settings).await?;
    let subjects = Subjects::new(&settings.prefix);
    let config = stream::Config {
        name: settings.stream.clone(),
        subjects: subjects.inbound(),
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        num_replicas: settings.replicas,
        description: Some("ticket-router inbound inquiries and cancellations".into()),
        ..Default::default()
    };
    let stream = js
        .create_or_update_stream(config)
        .await
        .map_err(|e| NatsError::Stream { stream: settings.stream.clone(), detail: e.to_string() })?;
    let name = stream.config.name.clone();
    let stream =
        js.get_stream(&name).await.map_err(|e| NatsError::Stream { stream: name.clone(), detail: e.to_string() })?;
    stream
        .get_or_create_consumer(
            &settings.consumer,
            consumer::pull::Config {
                durable_name: Some(settings.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: MAX_ACK_PENDING,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| NatsError::Consumer { stream: name, consumer: settings.consumer.clone(), detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_tls_file_is_an_error_naming_it_even_with_tls_not_required() {
        let mut settings = crate::config::NatsSettings { url: "nats://127.0.0.1:1".into(), ..Default::default() };
        settings.tls.ca_file = Some("/nonexistent/ca.pem".into());
        settings.tls.required = false;
        let Err(err) = connect(&settings).await else { panic!("refused") };
        let err = err.to_string();
        assert!(err.contains("nats.tls.ca_file `/nonexistent/ca.pem`"), "{err}");
    }
}
