//! `ticket-router loadgen` (a load run with live status) and
//! `ticket-router loadgen bench` (the benchmark): the options, the runtime,
//! Ctrl-C, and what is printed. The work is in [`crate::loadgen`].

use crate::loadgen::bench::{self, BenchOptions, Processes};
use crate::loadgen::traffic::{Format, Profile};
use crate::loadgen::{self, RunOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Publish realistic inquiries to NATS and drive simulated agents over gRPC.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LoadgenCommand {
    #[command(subcommand)]
    pub mode: Option<LoadgenMode>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Modes other than a load run.
#[derive(clap::Subcommand, Debug)]
pub enum LoadgenMode {
    /// Measure the router (publish → offer rate and latency) against the raw
    /// JetStream ceiling of the same NATS server.
    Bench(BenchArgs),
}

/// Where the router and its NATS are.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// NATS server URL (JetStream on).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The router's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub grpc: String,
    /// Subject prefix: the router's nats.prefix.
    #[arg(long, default_value = "support")]
    pub prefix: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ProfileArg {
    /// normal → peak → surge → normal, sized to deploy/ticket-router.toml.
    Demo,
    /// One constant rate.
    Steady,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FormatArg {
    Json,
    Protobuf,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Json => Format::Json,
            FormatArg::Protobuf => Format::Protobuf,
        }
    }
}

/// Options of a load run.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// The rate curve.
    #[arg(long, value_enum, default_value = "demo")]
    pub profile: ProfileArg,
    /// Inquiries per second: steady's rate (default 2); for demo the normal
    /// phases' rate, the others scaled with it (default 1.0).
    #[arg(long)]
    pub rate: Option<f64>,
    /// steady: how long (default 60s); demo: the whole curve, its phases
    /// stretched or squeezed to fit (default 4m 40s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Simulated agents, spread over the router's groups.
    #[arg(long, default_value_t = 32)]
    pub agents: usize,
    /// Concurrent chats per agent.
    #[arg(long, default_value_t = 5)]
    pub max_concurrent: u32,
    /// Mean handle time of a chat (demo time is compressed: real chats take minutes).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    pub handle_time: Duration,
    /// Payload encoding.
    #[arg(long, value_enum, default_value = "json")]
    pub format: FormatArg,
    /// Seed of the arrivals, the mix and the agents' timings.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The router's metrics URL, shown in the status.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// A line shown under the status title.
    #[arg(long)]
    pub note: Option<String>,
}

/// Options of the benchmark.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub target: Target,
    /// Fixed offered rates, inquiries per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,2500,5000")]
    pub rates: Vec<u32>,
    /// How long each fixed rate runs.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Runs of the fixed rates (all rates, then again); the verdict uses the
    /// median p99, and every run is reported, so noise shows as spread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
    /// How long each saturation measurement (raw and router) runs.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub saturation: Duration,
    /// Unmeasured warm-up: before the fixed rates (at the first rate), and
    /// before each saturation measurement starts counting.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Simulated agents; each is in every group and accepts and completes at once.
    #[arg(long, default_value_t = 20)]
    pub agents: usize,
    /// Concurrent chats per agent (1-50).
    #[arg(long, default_value_t = 50)]
    pub max_concurrent: u32,
    /// HTTP/2 connections the agents share; 0 gives each agent its own.
    #[arg(long, default_value_t = 0)]
    pub connections: usize,
    /// Payload encoding.
    #[arg(long, value_enum, default_value = "json")]
    pub format: FormatArg,
    /// Most inquiries waiting in NATS at saturation.
    #[arg(long, default_value_t = 10_000)]
    pub backlog: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the JSON result (default bench/results/bench-<time>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The router's process id, to report its CPU time per message.
    #[arg(long)]
    pub router_pid: Option<u32>,
    /// nats-server's process id, to report its CPU time per message.
    #[arg(long)]
    pub nats_pid: Option<u32>,
}

/// Runs `loadgen` or `loadgen bench`.
pub fn loadgen(command: LoadgenCommand) -> ExitCode {
    // Warnings only: the live status owns the terminal.
    super::init_tracing_at("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match command.mode {
        Some(LoadgenMode::Bench(args)) => runtime.block_on(run_bench(args)),
        None => runtime.block_on(run_load(command.run)),
    }
}

fn run_options(args: RunArgs) -> RunOptions {
    let (profile, name) = match args.profile {
        ProfileArg::Demo => {
            let profile = Profile::demo().rates_times(args.rate.unwrap_or(1.0));
            let total = args.duration.unwrap_or(profile.total());
            (profile.scaled_to(total), "demo")
        }
        ProfileArg::Steady => {
            let duration = args.duration.unwrap_or(Duration::from_secs(60));
            (Profile::steady(args.rate.unwrap_or(2.0), duration), "steady")
        }
    };
    RunOptions {
        nats_url: args.target.nats,
        grpc_url: args.target.grpc,
        prefix: args.target.prefix,
        profile,
        profile_name: name.to_string(),
        agents: args.agents,
        max_concurrent: args.max_concurrent,
        handle_time: args.handle_time,
        format: args.format.into(),
        seed: args.seed,
        metrics_url: args.metrics_url,
        note: args.note,
    }
}

async fn run_load(args: RunArgs) -> ExitCode {
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signals(stop.clone()));
    match loadgen::run(run_options(args), stop).await {
        Ok(summary) => {
            println!("{summary}");
            if summary.errors() > 0 && !summary.stopped_early {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_bench(args: BenchArgs) -> ExitCode {
    let out = args.out.unwrap_or_else(|| {
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace(':', "");
        PathBuf::from(format!("bench/results/bench-{at}.json"))
    });
    let options = BenchOptions {
        nats_url: args.target.nats,
        grpc_url: args.target.grpc,
        prefix: args.target.prefix,
        rates: args.rates,
        step: args.duration,
        repeat: args.repeat,
        saturation: args.saturation,
        warmup: args.warmup,
        agents: args.agents.max(1),
        max_concurrent: args.max_concurrent,
        connections: args.connections,
        format: args.format.into(),
        backlog: args.backlog,
        seed: args.seed,
        processes: Processes(
            [("loadgen", Some(std::process::id())), ("router", args.router_pid), ("nats-server", args.nats_pid)]
                .into_iter()
                .filter_map(|(name, pid)| Some((name.to_string(), pid?)))
                .collect(),
        ),
    };
    match bench::run(options).await {
        Ok(report) => {
            println!("{report}");
            if let Err(e) = report.write(&out) {
                eprintln!("loadgen bench: {e}");
                return ExitCode::FAILURE;
            }
            println!("written to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// First SIGINT/SIGTERM: stop the run and print the summary. Second: exit.
async fn stop_on_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    stop.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print!("\x1b[?25h");
    }
    std::process::exit(130);
}
