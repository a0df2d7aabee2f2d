//! The `ticket-router` binary: parses the command line and hands over to the
//! library. Nothing here decides anything.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use ticket_router::cli;

// The router allocates for every message it decodes, routes, records and
// publishes; mimalloc spends markedly less of the CPU on that than glibc's
// allocator under this many small, short-lived blocks.
#[global_allocator]
static ALLOCATOR: ticket_router::allocator::Mimalloc = ticket_router::allocator::Mimalloc;

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
        /// Also check that every key, certificate and credentials file it
        /// names can be read: run it where the router runs (in its container).
        #[arg(long)]
        files: bool,
    },
    /// Replay a promotion day offline through the routing core and report
    /// service levels per group and load level.
    Simulate {
        /// The scenario, e.g. scenarios/double11.toml; with --recorded it
        /// supplies the roster, handle times and time window.
        #[arg(long)]
        scenario: PathBuf,
        /// Replay recorded inquiries (JSONL, one Inquiry per line) instead of
        /// the scenario's arrivals.
        #[arg(long, value_name = "FILE.jsonl")]
        recorded: Option<PathBuf>,
        /// The configuration to try; without it, the defaults and
        /// TICKET_ROUTER_* environment overrides.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A second configuration to run on the same inquiries, shown side by side.
        #[arg(long, value_name = "OTHER.toml")]
        compare: Option<PathBuf>,
        /// Write an SVG chart of arrivals, queue, level, wait and agents.
        #[arg(long, value_name = "out.svg")]
        chart: Option<PathBuf>,
        /// Seed of the random draws (default: the scenario's, else 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Customers leave after waiting this long, e.g. 120s (overrides the scenario).
        #[arg(long, value_parser = ticket_router::core::settings::duration_text::parse)]
        patience: Option<std::time::Duration>,
    },
    /// Publish realistic traffic to a real NATS and drive simulated agents
    /// over gRPC, with a live status; `loadgen bench` measures the router.
    Loadgen(Box<cli::LoadgenCommand>),
}

fn main() -> ExitCode {
    ticket_router::allocator::tune();
    match Cli::parse().command {
        Commands::Serve { config } => cli::serve(config.as_deref()),
        Commands::CheckConfig { file, files } => cli::check_config(&file, files),
        Commands::Loadgen(command) => cli::loadgen(*command),
        Commands::Simulate { scenario, recorded, config, compare, chart, seed, patience } => {
            cli::simulate(&cli::SimulateArgs { scenario, recorded, config, compare, chart, seed, patience })
        }
    }
}
