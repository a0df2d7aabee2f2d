//! Checks of the adapter sections (`nats`, `grpc`, `metrics`): names NATS accepts,
//! socket addresses, TLS pairs and authentication. Key files are not opened here.

use super::{push, Problem};
use crate::config::{AuthMode, Config, GrpcAuth, NatsSettings};
use std::net::SocketAddr;
use std::path::Path;

/// HS256 keys shorter than the hash output weaken it (RFC 7518 section 3.2).
pub(crate) const MIN_HS256_SECRET_BYTES: usize = 32;

pub(super) fn check_nats(nats: &NatsSettings, out: &mut Vec<Problem>) {
    check_nats_url(&nats.url, out);
    let auth = [
        nats.credentials_file.as_deref().is_some_and(is_set_path),
        nats.nkey_seed_file.as_deref().is_some_and(is_set_path),
        nats.token.as_ref().is_some_and(|t| !t.expose().is_empty()),
        crate::adapters::nats::url_credentials(&nats.url).is_some(),
    ];
    if auth.iter().filter(|set| **set).count() > 1 {
        push(out, "nats", "set only one of credentials_file, nkey_seed_file, token and a user or token in url");
    }
    tls_pair(out, "nats.tls", nats.tls.cert_file.as_deref(), nats.tls.key_file.as_deref());
    if let Err(why) = subject_prefix(&nats.prefix) {
        push(
            out,
            "nats.prefix",
            format!("{:?} {why}; write dot-separated tokens such as \"support\" or \"acme.support\"", nats.prefix),
        );
    }
    if !(1..=5).contains(&nats.replicas) {
        out.push(Problem::new(
            "nats.replicas",
            format!("is {}; write 1 for a single server or 3 for a production cluster (at most 5)", nats.replicas),
        ));
    }
    if !(std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(300)).contains(&nats.lease) {
        out.push(Problem::new(
            "nats.lease",
            "must be between 1s and 5m; 15s lets another router take over 15 s after this one stopped renewing",
        ));
    }
    let names = [
        ("stream", &nats.stream),
        ("consumer", &nats.consumer),
        ("state_bucket", &nats.state_bucket),
        ("deadletter_stream", &nats.deadletter_stream),
        ("deflection_stream", &nats.deflection_stream),
    ];
    // Another tenant's router on the same server would take these over:
    // its stream rewritten to this prefix, its consumer and state shared.
    let defaults = NatsSettings::default();
    if nats.prefix != defaults.prefix && subject_prefix(&nats.prefix).is_ok() {
        let default_names = [
            &defaults.stream,
            &defaults.consumer,
            &defaults.state_bucket,
            &defaults.deadletter_stream,
            &defaults.deflection_stream,
        ];
        for ((key, name), default) in names.iter().zip(default_names) {
            if *name == default {
                push(
                    out,
                    format!("nats.{key}"),
                    format!(
                        "is the default {name:?} while prefix is {:?}: a router of another tenant on the same server \
                         would share it; give each tenant its own {key}",
                        nats.prefix
                    ),
                );
            }
        }
    }
    for (key, name) in names {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            push(
                out,
                format!("nats.{key}"),
                format!("{name:?} is not a valid JetStream name; use only letters, digits, `_` and `-`"),
            );
        }
    }
}

fn check_nats_url(url: &str, out: &mut Vec<Problem>) {
    if url.trim().is_empty() {
        return push(out, "nats.url", "is empty; write the server address, e.g. \"nats://127.0.0.1:4222\"");
    }
    for server in url.split(',').map(str::trim) {
        let scheme = server.split_once("://").map(|(scheme, _)| scheme);
        let bad_scheme = scheme.is_some_and(|s| !["nats", "tls", "ws", "wss"].contains(&s));
        // As the client will read it (a bad port, say); never echo a password.
        let dialled = crate::adapters::nats::without_credentials(server);
        let unreadable = (!server.is_empty()).then(|| dialled.parse::<async_nats::ServerAddr>().err()).flatten();
        if server.is_empty() || server.contains(char::is_whitespace) || bad_scheme || unreadable.is_some() {
            let why = unreadable.map_or(String::new(), |e| format!(" ({e})"));
            let shown = crate::adapters::nats::without_password(server);
            push(out, "nats.url", format!("{shown:?} is not a NATS server address{why}; write e.g. \"nats://host:4222\" or \"tls://host:4222\", several separated by commas"));
        }
    }
}

/// Why `prefix` is not a sequence of literal NATS subject tokens, if it is not.
fn subject_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        Err("is empty")
    } else if prefix.contains(char::is_whitespace) {
        Err("contains white space")
    } else if prefix.contains(['*', '>']) {
        Err("contains the wildcard `*` or `>`")
    } else if prefix.split('.').any(str::is_empty) {
        Err("has an empty token (a leading, trailing or double `.`)")
    } else {
        Ok(())
    }
}

pub(super) fn check_grpc_and_metrics(config: &Config, out: &mut Vec<Problem>) {
    let grpc = listen_addr(out, "grpc.listen", &config.grpc.listen);
    tls_pair(out, "grpc.tls", config.grpc.tls.cert_file.as_deref(), config.grpc.tls.key_file.as_deref());
    check_auth(&config.grpc.auth, out);
    if config.grpc.keepalive < std::time::Duration::from_secs(1) {
        push(
            out,
            "grpc.keepalive",
            "is under 1s; write e.g. \"10s\" (desktops that stop answering pings are dropped after twice this)",
        );
    }
    let metrics = listen_addr(out, "metrics.listen", &config.metrics.listen);
    if let (Some(grpc), Some(metrics)) = (grpc, metrics) {
        let same_ip = grpc.ip() == metrics.ip() || grpc.ip().is_unspecified() || metrics.ip().is_unspecified();
        if grpc.port() != 0 && grpc.port() == metrics.port() && same_ip {
            push(
                out,
                "metrics.listen",
                format!(
                    "port {} is also grpc.listen's; give each its own port (defaults: grpc {}, metrics {})",
                    metrics.port(),
                    crate::config::GrpcSettings::default().listen,
                    crate::config::MetricsSettings::default().listen,
                ),
            );
        }
    }
}

fn listen_addr(out: &mut Vec<Problem>, path: &str, text: &str) -> Option<SocketAddr> {
    let parsed = text.parse::<SocketAddr>();
    if parsed.is_err() {
        push(
            out,
            path,
            format!("{text:?} is not a socket address; write ip:port, e.g. \"0.0.0.0:9464\" or \"[::]:9464\""),
        );
    }
    parsed.ok()
}

fn check_auth(auth: &GrpcAuth, out: &mut Vec<Problem>) {
    let secret = auth.hs256_secret.as_ref().filter(|s| !s.expose().is_empty());
    let secret_file = auth.hs256_secret_file.as_deref().is_some_and(is_set_path);
    let public_key = auth.rs256_public_key_file.as_deref().is_some_and(is_set_path);
    match auth.auth_mode() {
        None => push(
            out,
            "grpc.auth.mode",
            format!("unknown mode {:?}; write \"jwt\" or, for a local demo only, \"none\"", auth.mode),
        ),
        Some(AuthMode::None) => {}
        Some(AuthMode::Jwt) => {
            if secret.is_none() && !secret_file && !public_key {
                push(out, "grpc.auth", "mode \"jwt\" needs a key to verify tokens: set hs256_secret, hs256_secret_file or rs256_public_key_file");
            }
            if secret.is_some() && secret_file {
                push(out, "grpc.auth.hs256_secret_file", "hs256_secret is set too; keep only one of them");
            }
            if public_key && (secret.is_some() || secret_file) {
                push(
                    out,
                    "grpc.auth.rs256_public_key_file",
                    "an HS256 secret is set too; tokens are verified with one key: keep either the RS256 public key or the HS256 secret",
                );
            }
            if let Some(secret) = secret.filter(|s| s.expose().len() < MIN_HS256_SECRET_BYTES) {
                push(
                    out,
                    "grpc.auth.hs256_secret",
                    format!("is {} bytes; use at least {MIN_HS256_SECRET_BYTES} random bytes", secret.expose().len()),
                );
            }
        }
    }
}

fn tls_pair(out: &mut Vec<Problem>, section: &str, cert: Option<&Path>, key: Option<&Path>) {
    match (cert.is_some_and(is_set_path), key.is_some_and(is_set_path)) {
        (true, false) => {
            push(out, format!("{section}.key_file"), "cert_file is set but key_file is not; set both or neither")
        }
        (false, true) => {
            push(out, format!("{section}.cert_file"), "key_file is set but cert_file is not; set both or neither")
        }
        _ => {}
    }
}

/// An empty path (e.g. from an empty environment variable) counts as unset.
fn is_set_path(path: &Path) -> bool {
    !path.as_os_str().is_empty()
}
