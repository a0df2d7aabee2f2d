//! The service configuration: one TOML file, environment overrides, validation.
//!
//! Owns the file format (every field has a default, unknown keys are errors), the
//! `TICKET_ROUTER_<SECTION>_<KEY>` override rule and the consistency checks behind
//! `ticket-router check-config`. It must not open sockets, read secrets' contents or
//! start anything: it only turns text into a checked [`Config`]. The routing sections
//! reuse the core's own types from [`crate::core::settings`].
//!
//! # Layout
//!
//! * `mod.rs` — [`Config`] and the adapter sections (`nats`, `grpc`, `metrics`).
//! * `load.rs` — TOML text to [`Config`], with line numbers and key paths in errors.
//! * `env.rs` — [`EnvSource`] and the environment override rule.
//! * `validate/` — [`validate`]: every problem of a parsed file at once.
//! * `check.rs` — [`check_config`], the printable [`Report`] and [`Config::summary`].

mod check;
mod diff;
mod env;
mod load;
pub(crate) mod validate;

#[cfg(test)]
mod tests;

pub use check::{check_config, ConfigErrors, Report};
pub use diff::routing_differences;
pub use env::{env_var_names, EnvSource, StdEnv, ENV_PREFIX};
pub(crate) use load::parse_every_problem;
pub use validate::{validate, Problem};

use crate::core::settings::{
    AgentSettings, DedicatedSettings, EscalationSettings, FatigueSettings, GroupSettings, LevelSettings,
    PrioritySettings, RoutingSettings,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::path::{Path, PathBuf};

/// The whole configuration file. Sections are explicit fields (not `flatten`)
/// because serde's `flatten` cannot be combined with `deny_unknown_fields`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Connection to NATS and the names of the JetStream objects the router uses.
    pub nats: NatsSettings,
    /// The agent-desktop gRPC server.
    pub grpc: GrpcSettings,
    /// The Prometheus scrape endpoint.
    pub metrics: MetricsSettings,
    /// Skill groups, written as `[[groups]]` tables.
    pub groups: Vec<GroupSettings>,
    /// The fan/VIP team rule.
    pub dedicated: DedicatedSettings,
    /// Where escalations go.
    pub escalation: EscalationSettings,
    /// The priority table of SPEC section 4.
    pub priority: PrioritySettings,
    /// Load-level thresholds, hysteresis and playbooks.
    pub levels: LevelSettings,
    /// The continuous-service limit.
    pub fatigue: FatigueSettings,
    /// Agent defaults and presence timing.
    pub agents: AgentSettings,
}

impl Default for Config {
    fn default() -> Self {
        let routing = RoutingSettings::default();
        Config {
            nats: NatsSettings::default(),
            grpc: GrpcSettings::default(),
            metrics: MetricsSettings::default(),
            groups: routing.groups,
            dedicated: routing.dedicated,
            escalation: routing.escalation,
            priority: routing.priority,
            levels: routing.levels,
            fatigue: routing.fatigue,
            agents: routing.agents,
        }
    }
}

impl Config {
    /// Reads `path`, applies the environment overrides from `env`, deserializes and
    /// validates. Every problem found is returned, each with its key path.
    pub fn load(path: &Path, env: &impl EnvSource) -> Result<Config, ConfigErrors> {
        let problems = |problems| ConfigErrors { file: path.to_path_buf(), problems };
        let text = std::fs::read_to_string(path)
            .map_err(|e| problems(vec![Problem::new("", format!("cannot read the file: {e}"))]))?;
        Config::from_toml(&text, env).map_err(problems)
    }

    /// Like [`Config::load`], from TOML text already in memory.
    pub fn from_toml(text: &str, env: &impl EnvSource) -> Result<Config, Vec<Problem>> {
        let mut table = load::parse_table(text)?;
        // Unknown variables are reported together with the file's own problems.
        let (applied, mut problems) = env::apply_overrides(&mut table, env);
        let (config, bad_fields) = load::deserialize(text, table, &applied);
        if let Some(config) = config {
            // Checked with the bad fields at their defaults; problems at or
            // under a bad field are not reported on top of it (a check that
            // compares it with another field may still speak of its default).
            let under_bad = |p: &Problem| bad_fields.iter().any(|b| !b.path.is_empty() && is_under(&p.path, &b.path));
            let checked = validate(&config).into_iter().filter(|p| !under_bad(p)).collect();
            // A value out of range that came from the environment says so.
            problems.extend(load::annotate(checked, &applied));
            if problems.is_empty() && bad_fields.is_empty() {
                return Ok(config);
            }
        }
        problems.splice(0..0, bad_fields);
        Err(problems)
    }

    /// The routing core's settings: the routing sections, copied.
    pub fn routing(&self) -> RoutingSettings {
        RoutingSettings {
            groups: self.groups.clone(),
            dedicated: self.dedicated.clone(),
            escalation: self.escalation.clone(),
            priority: self.priority.clone(),
            levels: self.levels.clone(),
            fatigue: self.fatigue.clone(),
            agents: self.agents.clone(),
        }
    }
}

/// `[nats]`: where the broker is, how to authenticate, and the names used on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL(s), comma separated: `nats://`, `tls://`, `ws://` or `wss://`.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed) for decentralized auth.
    pub credentials_file: Option<PathBuf>,
    /// A file holding an NKey seed (`SU...`).
    pub nkey_seed_file: Option<PathBuf>,
    /// A plain auth token.
    pub token: Option<Secret>,
    /// Client TLS.
    pub tls: NatsTls,
    /// First token(s) of every subject, e.g. `support` in `support.inquiries.<shop>`.
    pub prefix: String,
    /// JetStream stream holding the inbound subjects.
    pub stream: String,
    /// Durable consumer name on that stream.
    pub consumer: String,
    /// Key-value bucket where routing state is recorded.
    pub state_bucket: String,
    /// JetStream stream keeping the rejected messages of `<prefix>.deadletter`.
    pub deadletter_stream: String,
    /// JetStream stream keeping the inquiries handed to the bot on `<prefix>.deflections.>`.
    pub deflection_stream: String,
    /// Replicas of the stream and the state bucket (3 in a production cluster).
    pub replicas: usize,
    /// Encoding of what the router publishes (assignments, events,
    /// deflections, levels); each message says which in `Content-Type`.
    pub outbound_encoding: WireEncoding,
    /// How long the router that uses `state_bucket` may go without renewing
    /// its lease before another one takes over (see `persistence::lease`).
    #[serde(with = "crate::core::settings::duration_text")]
    pub lease: std::time::Duration,
}

/// A payload encoding on NATS (SPEC section 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireEncoding {
    /// JSON with the proto field names and enum names (`application/json`).
    #[default]
    Json,
    /// The protobuf messages of `proto/` (`application/protobuf`).
    Protobuf,
}

impl Default for NatsSettings {
    fn default() -> Self {
        NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            credentials_file: None,
            nkey_seed_file: None,
            token: None,
            tls: NatsTls::default(),
            prefix: "support".into(),
            stream: "SUPPORT_INQUIRIES".into(),
            consumer: "ticket-router".into(),
            state_bucket: "ticket_router_state".into(),
            deadletter_stream: "SUPPORT_DEADLETTER".into(),
            deflection_stream: "SUPPORT_DEFLECTIONS".into(),
            replicas: 1,
            outbound_encoding: WireEncoding::Json,
            lease: std::time::Duration::from_secs(15),
        }
    }
}

/// `[nats.tls]`: the CA to trust and an optional client certificate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsTls {
    /// PEM bundle of CAs that sign the server certificate (system roots if unset).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub required: bool,
}

/// `[grpc]`: the agent-desktop server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcSettings {
    /// Socket address to listen on, `ip:port`.
    pub listen: String,
    /// Server TLS; plain text when unset.
    pub tls: GrpcTls,
    /// How callers are authenticated.
    pub auth: GrpcAuth,
    /// HTTP/2 ping (and TCP keepalive) interval; a desktop that does not
    /// answer within as long again is disconnected, which starts its
    /// heartbeat grace. Catches desktops that vanish without closing.
    #[serde(with = "crate::core::settings::duration_text")]
    pub keepalive: std::time::Duration,
}

impl Default for GrpcSettings {
    fn default() -> Self {
        GrpcSettings {
            listen: "0.0.0.0:50051".into(),
            tls: GrpcTls::default(),
            auth: GrpcAuth::default(),
            keepalive: std::time::Duration::from_secs(10),
        }
    }
}

impl GrpcSettings {
    /// The parsed listen address; always `Ok` for a validated configuration.
    pub fn listen_addr(&self) -> Result<SocketAddr, AddrParseError> {
        self.listen.parse()
    }
}

/// `[grpc.tls]`: server certificate and key; both or neither.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcTls {
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
}

impl GrpcTls {
    /// Whether the server should speak TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// `[grpc.auth]`: bearer JWT verification, or none for local demos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcAuth {
    /// `"jwt"` or `"none"`; kept as text so a typo is reported with the other problems.
    pub mode: String,
    /// Shared HS256 secret.
    pub hs256_secret: Option<Secret>,
    /// File holding the shared HS256 secret.
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM RSA public key that verifies RS256 tokens.
    pub rs256_public_key_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
}

impl Default for GrpcAuth {
    fn default() -> Self {
        GrpcAuth {
            mode: AuthMode::Jwt.name().into(),
            hs256_secret: None,
            hs256_secret_file: None,
            rs256_public_key_file: None,
            issuer: None,
            audience: None,
        }
    }
}

impl GrpcAuth {
    /// The parsed mode; always `Some` for a validated configuration.
    pub fn auth_mode(&self) -> Option<AuthMode> {
        AuthMode::ALL.into_iter().find(|m| m.name() == self.mode)
    }
}

/// How gRPC callers are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer JWT in the `authorization` metadata (SPEC section 6).
    Jwt,
    /// No authentication: local demos only.
    None,
}

impl AuthMode {
    /// Every mode.
    pub const ALL: [AuthMode; 2] = [AuthMode::Jwt, AuthMode::None];

    /// The name written in the file.
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Jwt => "jwt",
            AuthMode::None => "none",
        }
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Socket address serving `/metrics`, `ip:port`.
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { listen: "0.0.0.0:9464".into() }
    }
}

impl MetricsSettings {
    /// The parsed listen address; always `Ok` for a validated configuration.
    pub fn listen_addr(&self) -> Result<SocketAddr, AddrParseError> {
        self.listen.parse()
    }
}

/// A credential from the file or the environment; `Debug` never shows it, so a
/// logged `Config` leaks nothing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Whether key path `path` is `parent` or lies under it (`parent.x`, `parent[1]`).
fn is_under(path: &str, parent: &str) -> bool {
    path.strip_prefix(parent).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}
