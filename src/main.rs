//! The `ticket-router` binary: parses the command line and hands over to the
//! library. Nothing here decides anything.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use ticket_router::cli;

/// Routes customer-service inquiries from NATS to skill groups and agents.
#[derive(Parser)]
#[command(name = "ticket-router", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the router: NATS in, gRPC for agents, Prometheus metrics out.
    Serve {
        /// The TOML configuration file; without it, the defaults and
        /// TICKET_ROUTER_* environment overrides.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print every problem with its path.
    CheckConfig {
        /// The TOML configuration file, e.g. deploy/ticket-router.toml.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Commands::Serve { config } => cli::serve(config.as_deref()),
        Commands::CheckConfig { file } => cli::check_config(&file),
    }
}
