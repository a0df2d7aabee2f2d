//! `ticket-router simulate`: loads the scenario (and a recording), the
//! configuration(s), runs the simulation and prints the report; writes the
//! chart when asked. Problems in the inputs are printed with what to fix.

use crate::config::{Config, EnvSource, Report, StdEnv, ENV_PREFIX};
use crate::core::RoutingSettings;
use crate::simulate::chart::{self, Series};
use crate::simulate::report::{self, Run};
use crate::simulate::scenario::Span;
use crate::simulate::{compile, recorded, run, Outcome, Plan, Scenario, SimError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The options of `simulate`, as parsed by the binary.
#[derive(Clone, Debug, Default)]
pub struct SimulateArgs {
    /// The scenario; with `recorded`, it supplies the roster, handle times and window.
    pub scenario: PathBuf,
    /// A JSONL file of recorded inquiries to replay instead of the scenario's arrivals.
    pub recorded: Option<PathBuf>,
    /// The configuration to simulate; the defaults with environment overrides without it.
    pub config: Option<PathBuf>,
    /// A second configuration to run on the same inquiries and print beside the first.
    pub compare: Option<PathBuf>,
    /// Where to write the SVG chart.
    pub chart: Option<PathBuf>,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Overrides the scenario's patience.
    pub patience: Option<Duration>,
}

/// Runs `simulate`; exit code 0 with the report on stdout, 2 with the
/// problems on stderr.
pub fn simulate(args: &SimulateArgs) -> ExitCode {
    match execute(args) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("ticket-router simulate: {problem}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &SimulateArgs) -> Result<String, String> {
    let plan = plan(args)?;
    let name_a = config_name(args.config.as_deref());
    let a = simulate_with(&plan, args.config.as_deref(), &args.scenario)?;
    let compared = match &args.compare {
        Some(other) => Some((config_name(Some(other)), simulate_with(&plan, Some(other), &args.scenario)?)),
        None => None,
    };
    let run_a = Run { config: &name_a, outcome: &a };
    let mut series = vec![Series { label: &name_a, stats: &a.stats }];
    let text = match &compared {
        Some((name_b, b)) => {
            series.push(Series { label: name_b, stats: &b.stats });
            report::compare(&plan, &run_a, &Run { config: name_b, outcome: b })
        }
        None => report::table(&plan, &run_a),
    };
    if let Some(path) = &args.chart {
        if let Err(e) = std::fs::write(path, chart::svg(&plan, &series)) {
            // The run is done: keep its report even without the chart.
            print!("{text}");
            return Err(format!("cannot write the chart to {}: {e}; check the directory exists", path.display()));
        }
        eprintln!("chart written to {}", path.display());
    }
    Ok(text)
}

/// The scenario compiled, with the recording's inquiries when one is given.
fn plan(args: &SimulateArgs) -> Result<Plan, String> {
    let mut scenario = Scenario::load(&args.scenario).map_err(|e| e.to_string())?;
    if let Some(patience) = args.patience {
        if patience.is_zero() {
            return Err("--patience: must be more than 0, e.g. 5m (leave it out for customers who never leave)".into());
        }
        scenario.patience = Some(Span(patience));
    }
    let seed = args.seed.or(scenario.seed).unwrap_or(1);
    let mut plan = compile(&scenario, seed, args.recorded.is_none()).map_err(|e| in_file(&args.scenario, e))?;
    if let Some(path) = &args.recorded {
        let recording = recorded::read(path, &plan).map_err(|e| e.to_string())?;
        for skipped in &recording.skipped {
            eprintln!("{}:{}: skipped: {}", path.display(), skipped.line, skipped.reason);
        }
        if !recording.skipped.is_empty() {
            eprintln!(
                "{}: {} line(s) skipped, replaying the other {}",
                path.display(),
                recording.skipped.len(),
                recording.arrivals.len()
            );
        }
        if recording.shifted_days != 0 {
            eprintln!("{}: moved by {} day(s) into the scenario's window", path.display(), recording.shifted_days);
        }
        if recording.outside > 0 {
            eprintln!(
                "{}: {} inquiries fall outside the scenario's window and are left out",
                path.display(),
                recording.outside
            );
        }
        plan.arrivals = recording.arrivals;
        plan.recorded = Some(path.display().to_string());
    }
    Ok(plan)
}

fn simulate_with(plan: &Plan, config: Option<&Path>, scenario: &Path) -> Result<Outcome, String> {
    let settings = load_routing(config).map_err(|report| {
        format!("{report}\nthe configuration has problems; fix them (check-config lists them all)")
    })?;
    run(plan, settings).map_err(|e| in_file(scenario, e))
}

/// The process environment with gRPC authentication switched off: a
/// simulation serves nobody, so it needs no token key (which the defaults
/// lack), while every routing setting and override still applies.
struct OfflineEnv;

const AUTH_MODE_VAR: &str = "GRPC_AUTH_MODE";

impl EnvSource for OfflineEnv {
    fn vars(&self) -> Vec<(String, String)> {
        let var = format!("{ENV_PREFIX}{AUTH_MODE_VAR}");
        let mut vars = StdEnv.vars();
        vars.retain(|(name, _)| *name != var);
        vars.push((var, "none".into()));
        vars
    }
}

/// Like [`super::load_config`] (the file or the defaults, with environment
/// overrides, validated), for a run that opens no sockets.
fn load_routing(file: Option<&Path>) -> Result<RoutingSettings, String> {
    let config = match file {
        Some(path) => Config::load(path, &OfflineEnv).map_err(|e| e.to_string())?,
        None => Config::from_toml("", &OfflineEnv)
            .map_err(|problems| Report::new(Path::new("(defaults)"), &problems).to_string())?,
    };
    Ok(config.routing())
}

/// Every problem on its own line, prefixed with the file, and what to do.
fn in_file(file: &Path, error: SimError) -> String {
    match error {
        SimError::Invalid(problems) | SimError::Configuration(problems) => {
            let file = file.display();
            let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
            format!("{}\n{file}: {} problem(s); fix them and run again", lines.join("\n"), problems.len())
        }
        other => other.to_string(),
    }
}

fn config_name(config: Option<&Path>) -> String {
    config.map_or_else(|| "defaults".to_string(), |p| p.display().to_string())
}
