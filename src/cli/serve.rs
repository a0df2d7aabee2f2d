//! `ticket-router serve`: loads the configuration, binds the sockets, starts
//! the service and stops it on SIGTERM/SIGINT (a second signal exits at once).

use crate::adapters::serve::{self, Listeners};
use crate::config::{Config, Report, StdEnv};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a graceful shutdown may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Loads `file` (or the defaults) with environment overrides.
pub fn load_config(file: Option<&Path>) -> Result<Config, String> {
    match file {
        Some(path) => Config::load(path, &StdEnv).map_err(|e| e.to_string()),
        None => Config::from_toml("", &StdEnv)
            .map_err(|problems| Report::new(Path::new("(defaults)"), &problems).to_string()),
    }
}

/// Runs the service; the exit code says how it ended.
pub fn serve(file: Option<&Path>) -> ExitCode {
    super::init_tracing();
    let config = match load_config(file) {
        Ok(config) => config,
        Err(report) => {
            eprintln!(
                "{report}\nticket-router: the configuration has problems; fix them (check-config lists them all)"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(run(config))
}

async fn bind(
    what: &str,
    addr: Result<std::net::SocketAddr, std::net::AddrParseError>,
) -> Result<tokio::net::TcpListener, String> {
    let addr = addr.map_err(|e| format!("{what}.listen is not ip:port ({e})"))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        use std::io::ErrorKind;
        let fix = match e.kind() {
            ErrorKind::AddrInUse => "stop whatever uses the port, or pick another".to_string(),
            ErrorKind::PermissionDenied => {
                "ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a port above 1023".to_string()
            }
            ErrorKind::AddrNotAvailable => {
                format!("{} is not an address of this host; use 0.0.0.0 or one of its own", addr.ip())
            }
            _ => "pick another address".to_string(),
        };
        let key = format!("{what}.listen");
        let env = format!("TICKET_ROUTER_{}_LISTEN", what.to_uppercase());
        let set_by = if std::env::var_os(&env).is_some() { format!(" (set by {env})") } else { String::new() };
        format!("cannot listen for {what} on {addr}: {e}; {fix}: change {key}{set_by}")
    })
}

async fn run(config: Config) -> ExitCode {
    let listeners =
        match (bind("grpc", config.grpc.listen_addr()).await, bind("metrics", config.metrics.listen_addr()).await) {
            (Ok(grpc), Ok(metrics)) => Listeners { grpc, metrics },
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("ticket-router: {e}");
                return ExitCode::from(2);
            }
        };
    let grpc_addr = listeners.grpc.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let metrics_addr = listeners.metrics.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(grpc = %grpc_addr, metrics = %metrics_addr, nats = %crate::adapters::nats::without_password(&config.nats.url), "starting");
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let on_ready = Box::new(move || {
        tracing::info!("consuming inbound inquiries");
        println!("ticket-router ready: grpc={grpc_addr} metrics={metrics_addr}");
        let _ = std::io::stdout().flush();
    });
    let service = serve::run(config, listeners, shutdown.clone(), on_ready);
    tokio::pin!(service);
    let result = tokio::select! {
        result = &mut service => result,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_LIMIT).await } => {
            tracing::error!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting");
            return ExitCode::from(1);
        }
    };
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot run");
            eprintln!("ticket-router: {e}");
            ExitCode::from(1)
        }
    }
}

/// First SIGTERM/SIGINT: graceful shutdown. Second: exit at once.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the router with SIGKILL");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutting down: finishing in-flight work (signal again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
