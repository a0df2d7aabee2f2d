//! The subcommands of the binary, each a function the thin `main` calls.

mod loadgen;
mod serve;
mod simulate;

pub use loadgen::{loadgen, LoadgenCommand};
pub use serve::{load_config, serve};
pub use simulate::{simulate, SimulateArgs};

use crate::config::{check_config as check, Report, StdEnv};
use std::path::Path;
use std::process::ExitCode;

/// `ticket-router check-config [--files] FILE`: prints a summary and exits 0,
/// or prints every problem as `FILE: path: message` on stderr and exits 1.
/// `files`: the key, certificate and credentials files it names must open.
pub fn check_config(file: &Path, files: bool) -> ExitCode {
    let checked = check(file, &StdEnv).and_then(|config| {
        let mut unreadable = if files { config.unreadable_files() } else { Vec::new() };
        if files && unreadable.is_empty() {
            // Readable is not enough: a key must also work (an HS256 secret
            // file long enough, a PEM that parses).
            if let Err(e) = crate::adapters::grpc::GrpcServer::check_keys(&config.grpc) {
                let text = e.to_string();
                // The error names its key (`grpc.auth: ...`) when it can.
                let (key, message) = match text.split_once(": ") {
                    Some((key, rest)) if key.starts_with("grpc.") && !key.contains(' ') => (key, rest),
                    _ => ("grpc", text.as_str()),
                };
                unreadable.push(crate::config::Problem::new(key, message));
            }
        }
        if unreadable.is_empty() {
            Ok(config)
        } else {
            Err(unreadable)
        }
    });
    match checked {
        Ok(config) => {
            println!("{}: {}", file.display(), config.summary());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}", Report::new(file, &problems));
            eprintln!("{}: {} problem(s); fix them and run check-config again", file.display(), problems.len());
            ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr: `RUST_LOG` filters (default `info`) and
/// `LOG_FORMAT=json` switches to JSON lines. (`TICKET_ROUTER_*` names are
/// reserved for configuration overrides.)
pub fn init_tracing() {
    init_tracing_at("info");
}

/// [`init_tracing`] with another default level when `RUST_LOG` is unset.
pub fn init_tracing_at(default: &str) {
    use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(filter).with(library_caps());
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        registry.with(layer.json()).init();
    } else {
        registry.with(layer).init();
    }
}

/// Ceilings for libraries' own logs, whatever `RUST_LOG` asks (a second
/// filter: both must let an event through). The NATS client logs the
/// subject of every message below info (a shop id may hold a phone
/// number), and at trace every message it reads and writes, customers'
/// inquiries and handoff notes included; the HTTP/2 libraries log frames
/// at trace.
fn library_caps() -> tracing_subscriber::filter::Targets {
    use tracing::level_filters::LevelFilter;
    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("async_nats", LevelFilter::INFO)
        .with_target("h2", LevelFilter::DEBUG)
        .with_target("hyper", LevelFilter::DEBUG)
        .with_target("tonic", LevelFilter::DEBUG)
}

#[cfg(test)]
#[test]
fn library_logs_are_capped_whatever_the_filter_asks() {
    use tracing::Level;
    let caps = library_caps();
    assert!(!caps.would_enable("async_nats::connection", &Level::DEBUG));
    assert!(caps.would_enable("async_nats::connector", &Level::INFO));
    assert!(!caps.would_enable("h2::codec", &Level::TRACE));
    assert!(caps.would_enable("ticket_router::adapters::nats", &Level::TRACE));
}
