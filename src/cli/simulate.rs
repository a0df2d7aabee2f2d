//! `ticket-router simulate`: loads the scenario (and a recording), the
//! configuration(s), runs the simulation and prints the report; writes the
//! chart when asked. Problems in the inputs are printed with what to fix.

use crate::config::{env_var_names, routing_differences, Config, EnvSource, Report, StdEnv, ENV_PREFIX};
use crate::simulate::chart::{self, Series};
use crate::simulate::report::{self, Run};
use crate::simulate::scenario::Span;
use crate::simulate::{check, compile, recorded, run, Outcome, Plan, Scenario, SimError};
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
    if let Some(chart) = args.chart.as_deref() {
        let ext = chart.extension().map(|e| e.to_string_lossy().to_string());
        if !ext.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
            let not = ext.map_or("without an extension".to_string(), |e| format!("not .{e}"));
            return Err(format!(
                "--chart: the chart is an SVG image; name the file .svg ({not}), e.g. --chart double11.svg"
            ));
        }
    }
    let plan = plan(args)?;
    let name_a = config_name(args.config.as_deref());
    let config_a = load_config(args.config.as_deref())?;
    // Both files are checked before either runs: a mistake in the second
    // must not cost the first's run.
    let config_b = args.compare.as_deref().map(|other| load_config(Some(other))).transpose()?;
    if let (Some(other), Some(config_b)) = (args.compare.as_deref(), &config_b) {
        check(&plan, &config_b.routing()).map_err(|e| plan_error(e, Some(other), &args.scenario))?;
    }
    let a = simulate_with(&plan, &config_a, args.config.as_deref(), &args.scenario)?;
    let mut differences = String::new();
    let compared = match (&args.compare, config_b) {
        (Some(other), Some(config_b)) => {
            differences = differences_note(&config_a, &config_b);
            Some((config_name(Some(other)), simulate_with(&plan, &config_b, Some(other), &args.scenario)?))
        }
        _ => None,
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
    let text = text + &differences + &overrides_note();
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
    let mut plan = compile(&scenario, seed, args.recorded.is_none())
        .map_err(|e| in_file(&args.scenario.display().to_string(), e))?;
    if let Some(path) = &args.recorded {
        let recording = recorded::read(path, &plan).map_err(|e| e.to_string())?;
        for skipped in &recording.skipped {
            eprintln!(
                "{}:{}: skipped: {}",
                path.display(),
                skipped.line,
                crate::adapters::redact::Redacted(&skipped.reason)
            );
        }
        if !recording.skipped.is_empty() {
            eprintln!(
                "{}: {} line(s) skipped, replaying the other {}",
                path.display(),
                recording.skipped.len(),
                recording.arrivals.len()
            );
        }
        for (skill, n) in recording.skills_nobody_has(&plan) {
            eprintln!(
                "{}: {n} inquiries require the skill `{skill}` that no roster shift has, so nobody can answer them; \
                 list it in the shifts that have it, e.g. skills = [\"{skill}\"]",
                path.display()
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
        plan.recorded = Some(recording.source(&path.display().to_string()));
        plan.arrivals = recording.arrivals;
    }
    Ok(plan)
}

fn simulate_with(plan: &Plan, config: &Config, file: Option<&Path>, scenario: &Path) -> Result<Outcome, String> {
    run(plan, config.routing()).map_err(|e| plan_error(e, file, scenario))
}

fn plan_error(e: SimError, file: Option<&Path>, scenario: &Path) -> String {
    match e {
        // The roster names groups of this configuration: say which one.
        SimError::Configuration(problems) => {
            in_file(&format!("{} with {}", scenario.display(), config_name(file)), SimError::Configuration(problems))
        }
        other => in_file(&scenario.display().to_string(), other),
    }
}

fn load_config(file: Option<&Path>) -> Result<Config, String> {
    if let Some(path) = file.filter(|p| !p.is_file()) {
        return Err(format!(
            "{}: no such configuration file; give the path of a router configuration (TOML)",
            path.display()
        ));
    }
    load_offline(file).map_err(|report| {
        format!("{report}\nthe configuration has problems; fix them (check-config lists them all, though it also wants the gRPC settings a simulation does not use)")
    })
}

/// What `--compare` compared: the compare file is a whole configuration,
/// so a setting left out of it is the default there, not the first file's.
fn differences_note(a: &Config, b: &Config) -> String {
    let differences = routing_differences(a, b);
    if differences.is_empty() {
        return "routing settings that differ between the two: none\n".into();
    }
    let mut note = String::from("routing settings that differ between the two (the second file is a whole configuration: what it leaves out is the default):\n");
    for line in &differences {
        note.push_str(&format!("  {line}\n"));
    }
    note
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

/// The `TICKET_ROUTER_*` variables set in the environment, which override
/// the same settings in every configuration simulated: a comparison of two
/// files both overridden would otherwise show no difference and not say why.
fn overrides_note() -> String {
    // Only variables naming a routing setting: connection, port and secret
    // variables (and Kubernetes' own TICKET_ROUTER_SERVICE_HOST) change nothing here.
    let routing: std::collections::HashSet<String> = env_var_names()
        .into_iter()
        .filter(|(_, path)| !["nats.", "grpc.", "metrics."].iter().any(|p| path.starts_with(p)))
        .map(|(var, _)| var)
        .collect();
    let mut names: Vec<String> =
        StdEnv.vars().into_iter().map(|(name, _)| name).filter(|n| routing.contains(n)).collect();
    if names.is_empty() {
        return String::new();
    }
    names.sort();
    format!(
        "environment: {} set, overriding the same setting in every configuration above; unset to simulate the files as written\n",
        names.join(", ")
    )
}

/// Like [`super::load_config`] (the file or the defaults, with environment
/// overrides, validated), for a run that opens no sockets.
fn load_offline(file: Option<&Path>) -> Result<Config, String> {
    let config = match file {
        Some(path) => Config::load(path, &OfflineEnv).map_err(|e| e.to_string())?,
        None => Config::from_toml("", &OfflineEnv)
            .map_err(|problems| Report::new(Path::new("(defaults)"), &problems).to_string())?,
    };
    Ok(config)
}

/// Every problem on its own line, prefixed with the file, and what to do.
fn in_file(file: &str, error: SimError) -> String {
    match error {
        SimError::Invalid(problems) | SimError::Configuration(problems) => {
            let lines: Vec<String> = problems.iter().map(|p| format!("{file}: {p}")).collect();
            format!("{}\n{file}: {} problem(s); fix them and run again", lines.join("\n"), problems.len())
        }
        other => other.to_string(),
    }
}

fn config_name(config: Option<&Path>) -> String {
    config.map_or_else(|| "defaults".to_string(), |p| p.display().to_string())
}
