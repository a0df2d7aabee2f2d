//! The benchmark's result: the machine it ran on, the raw ceiling, the
//! router's saturation rate and their ratio, and each fixed rate's latency —
//! printed as a table and written as JSON (`bench/results/`).

use super::floor::Floor;
use super::{BenchOptions, Throughput};
use crate::loadgen::latency::LatencySummary;
use crate::loadgen::LoadgenError;
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::time::SystemTime;

/// The targets of the issue: the router reaches at least this share of the raw ceiling…
pub const TARGET_RATIO: f64 = 0.5;
/// …and answers within this p99 at [`TARGET_RATE`].
pub const TARGET_P99_MS: f64 = 20.0;
pub const TARGET_RATE: u32 = 5_000;

/// Where and how the benchmark ran.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub os: String,
    pub arch: String,
    pub build_profile: String,
    /// `/proc/loadavg` (1, 5, 15 min) at start and end: high values mean noisy figures.
    pub loadavg_start: String,
    pub loadavg_end: String,
    /// `TOKIO_WORKER_THREADS` of the load generator and of the router (read
    /// from `--router-pid`'s environment, else `ROUTER_THREADS`); empty: one
    /// per CPU, or unknown.
    pub loadgen_threads: String,
    pub router_threads: String,
}

/// One fixed offered rate.
#[derive(Clone, Debug, Serialize)]
pub struct FixedRate {
    /// Which run of the fixed rates (1 when `--repeat` is 1).
    pub run: u32,
    pub target_per_sec: u32,
    pub published_per_sec: f64,
    pub published: u64,
    pub offered: u64,
    pub publish_errors: u64,
    /// Publish → offer at the agent; `None` when nothing was offered.
    pub latency: Option<LatencySummary>,
    /// How late the load generator sent each inquiry after it was due: part
    /// of `latency` that is the generator's (it shares the CPUs), not the router's.
    pub schedule_lag: Option<LatencySummary>,
}

impl FixedRate {
    /// A one-line account for progress output.
    pub fn line(&self) -> String {
        let latency = self.latency.as_ref().map_or("no offers".to_string(), |l| {
            format!("p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms", l.p50_ms, l.p99_ms, l.p999_ms)
        });
        let lag = self.schedule_lag.as_ref().map_or(String::new(), |l| {
            format!(" (of which the generator sent late: p50 {:.2} ms, p99 {:.2} ms)", l.p50_ms, l.p99_ms)
        });
        format!("{}/s: {} published, {} offered, {latency}{lag}", self.target_per_sec, self.published, self.offered)
    }
}

/// The router's resident memory before and after the fixed rates, and after
/// saturation. Finished inquiries stay in memory for `agents.retain_finished`
/// (24 h by default), so the growth per inquiry over the fixed rates (steady
/// load, no backlog) is the figure to size a promotion day's memory by;
/// saturation adds what a backlog of 10,000 leaves behind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouterMemory {
    pub rss_before_bytes: u64,
    pub rss_after_fixed_rates_bytes: u64,
    pub rss_after_saturation_bytes: u64,
    /// Inquiries offered to the agents during the fixed rates.
    pub inquiries: u64,
    /// Growth over the fixed rates per inquiry offered then.
    pub bytes_per_inquiry: f64,
}

impl RouterMemory {
    /// From the three readings and the inquiries offered during the fixed rates.
    pub fn new(rss: [u64; 3], inquiries: u64) -> RouterMemory {
        let growth = rss[1].saturating_sub(rss[0]) as f64;
        RouterMemory {
            rss_before_bytes: rss[0],
            rss_after_fixed_rates_bytes: rss[1],
            rss_after_saturation_bytes: rss[2],
            inquiries,
            bytes_per_inquiry: growth / inquiries.max(1) as f64,
        }
    }
}

/// Everything one benchmark run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub started_at: String,
    pub machine: Machine,
    pub nats_server_version: String,
    pub router_version: String,
    pub format: String,
    pub agents: usize,
    pub max_concurrent: u32,
    /// HTTP/2 connections the agents shared (0: one each).
    pub connections: usize,
    pub warmup_seconds: f64,
    pub backlog: u64,
    pub raw_ceiling: Throughput,
    /// The agents' Subscribe/Accept/Complete against a desk that only
    /// offers, and the bound that puts on any router here.
    pub agent_protocol: Floor,
    pub router_saturation: Throughput,
    /// Router saturation / raw ceiling.
    pub ratio: f64,
    pub fixed_rates: Vec<FixedRate>,
    pub agent_errors: u64,
    pub target_ratio: f64,
    pub target_p99_ms_at_5000: f64,
    pub ratio_met: bool,
    /// The p99 at 5000/s of every run, in run order, and their median.
    pub p99_ms_at_5000: Vec<f64>,
    pub p99_ms_at_5000_median: Option<f64>,
    /// The median p99 under the target and nothing lost in any run; `None`
    /// when 5000/s was not among the rates.
    pub p99_at_5000_met: Option<bool>,
    /// `None` when the router's pid was not given or `/proc` is unreadable.
    pub router_memory: Option<RouterMemory>,
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The router's `TOKIO_WORKER_THREADS`: from its environment when readable
/// (empty: unset, one per CPU), else `ROUTER_THREADS`, else "unknown".
fn router_threads(pid: Option<u32>) -> String {
    let from_process = pid.and_then(|pid| {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        Some(var_in_environ(&environ, "TOKIO_WORKER_THREADS").unwrap_or_default())
    });
    from_process.or_else(|| std::env::var("ROUTER_THREADS").ok()).unwrap_or_else(|| "unknown".into())
}

/// The variable `name` in `environ` (`NAME=value` entries, NUL-separated).
fn var_in_environ(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

fn cpu_model() -> String {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = text.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split(':').nth(1)));
    model.map_or("unknown".to_string(), |m| m.trim().to_string())
}

impl BenchReport {
    /// An empty report for `options`, started now.
    pub fn new(options: &BenchOptions, nats_version: &str) -> BenchReport {
        BenchReport {
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            machine: Machine {
                nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
                cpu: cpu_model(),
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
                build_profile: if cfg!(debug_assertions) { "debug" } else { "release" }.to_string(),
                loadavg_start: loadavg(),
                loadavg_end: String::new(),
                loadgen_threads: std::env::var("TOKIO_WORKER_THREADS").unwrap_or_default(),
                router_threads: router_threads(options.processes.pid("router")),
            },
            nats_server_version: nats_version.to_string(),
            router_version: env!("CARGO_PKG_VERSION").to_string(),
            format: options.format.as_str().to_string(),
            agents: options.agents,
            max_concurrent: options.max_concurrent,
            connections: options.connections,
            warmup_seconds: options.warmup.as_secs_f64(),
            backlog: options.backlog,
            raw_ceiling: Throughput::default(),
            agent_protocol: Floor::default(),
            router_saturation: Throughput::default(),
            ratio: 0.0,
            fixed_rates: Vec::new(),
            agent_errors: 0,
            target_ratio: TARGET_RATIO,
            target_p99_ms_at_5000: TARGET_P99_MS,
            ratio_met: false,
            p99_ms_at_5000: Vec::new(),
            p99_ms_at_5000_median: None,
            p99_at_5000_met: None,
            router_memory: None,
        }
    }

    /// Computes the ratio and the verdicts once everything is measured.
    pub fn finish(&mut self) {
        self.machine.loadavg_end = loadavg();
        self.ratio = self.router_saturation.per_sec / self.raw_ceiling.per_sec.max(f64::MIN_POSITIVE);
        self.ratio_met = self.ratio >= TARGET_RATIO;
        let at_target: Vec<&FixedRate> = self.fixed_rates.iter().filter(|s| s.target_per_sec == TARGET_RATE).collect();
        // A run with no offers counts as infinitely slow.
        self.p99_ms_at_5000 =
            at_target.iter().map(|s| s.latency.as_ref().map_or(f64::INFINITY, |l| l.p99_ms)).collect();
        self.p99_ms_at_5000_median = median(&self.p99_ms_at_5000);
        let nothing_lost = at_target.iter().all(|s| s.offered == s.published);
        self.p99_at_5000_met = self.p99_ms_at_5000_median.map(|p99| p99 < TARGET_P99_MS && nothing_lost);
    }

    /// Writes the report as pretty JSON, creating the directory.
    pub fn write(&self, path: &Path) -> Result<(), LoadgenError> {
        let error =
            |e: &dyn fmt::Display| LoadgenError::Write { path: path.display().to_string(), detail: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| error(&e))?;
        }
        let json = serde_json::to_string_pretty(self).map_err(|e| error(&e))?;
        std::fs::write(path, json + "\n").map_err(|e| error(&e))
    }
}

/// The middle value; of two middle ones the higher, so an even number of
/// runs never flatters the verdict.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "ticket-router bench: nats-server {}, {} CPUs ({}), {} build, {} payloads, {} agents x {} chats, load {} -> {}",
            self.nats_server_version, m.nproc, m.cpu, m.build_profile, self.format, self.agents,
            self.max_concurrent, m.loadavg_start, m.loadavg_end
        )?;
        writeln!(
            f,
            "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            "", "rate/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "lost"
        )?;
        writeln!(f, "{:<28} {:>9.0}", "raw JetStream ceiling", self.raw_ceiling.per_sec)?;
        writeln!(f, "{:<28} {:>9.0}", "agent RPCs, no router", self.agent_protocol.exchange.per_sec)?;
        writeln!(f, "{:<28} {:>9.0}", "router at saturation", self.router_saturation.per_sec)?;
        let repeated = self.fixed_rates.iter().any(|r| r.run > 1);
        for s in &self.fixed_rates {
            let run = if repeated { format!(" #{}", s.run) } else { String::new() };
            let label = format!("router at {}/s offered{run}", s.target_per_sec);
            match &s.latency {
                Some(l) => writeln!(
                    f,
                    "{label:<28} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8}",
                    s.published_per_sec,
                    l.p50_ms,
                    l.p99_ms,
                    l.p999_ms,
                    l.max_ms,
                    s.published - s.offered.min(s.published)
                )?,
                None => writeln!(f, "{label:<28} {:>9.0}   (no offers received)", s.published_per_sec)?,
            }
            if let Some(l) = &s.schedule_lag {
                writeln!(
                    f,
                    "{:<28} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    "  of it, generator sent late", "", l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
                )?;
            }
        }
        let cpu = |t: &Throughput| {
            let parts: Vec<String> = t.cpu_us_per_message.iter().map(|(p, us)| format!("{p} {us:.0}")).collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(", ")
            }
        };
        writeln!(
            f,
            "CPU us per message: raw: {}; agent RPCs: {}; router: {}",
            cpu(&self.raw_ceiling),
            cpu(&self.agent_protocol.exchange),
            cpu(&self.router_saturation)
        )?;
        if let Some(m) = &self.router_memory {
            let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
            writeln!(
                f,
                "router memory (RSS): {:.0} -> {:.0} MiB over the {} inquiries of the fixed rates ({:.0} bytes each), \
                 {:.0} MiB after saturation",
                mib(m.rss_before_bytes),
                mib(m.rss_after_fixed_rates_bytes),
                m.inquiries,
                m.bytes_per_inquiry,
                mib(m.rss_after_saturation_bytes)
            )?;
        }
        writeln!(f, "ratio router/raw: {:.2} (target >= {TARGET_RATIO}: {})", self.ratio, verdict(self.ratio_met))?;
        if let (Some(bound), Some(ratio)) = (self.agent_protocol.bound_per_sec, self.agent_protocol.bound_ratio) {
            writeln!(
                f,
                "bound on this machine: raw CPU + agent RPC CPU per inquiry allow at most {bound:.0}/s, \
                 a ratio of {ratio:.2}, with no routing at all"
            )?;
        }
        match (self.p99_at_5000_met, self.p99_ms_at_5000_median) {
            (Some(met), Some(median)) if self.p99_ms_at_5000.len() > 1 => {
                let runs: Vec<String> = self.p99_ms_at_5000.iter().map(|p| format!("{p:.1}")).collect();
                write!(
                    f,
                    "p99 at {TARGET_RATE}/s < {TARGET_P99_MS} ms, nothing lost: {} (median {median:.1} ms of runs {})",
                    verdict(met),
                    runs.join(", ")
                )
            }
            (Some(met), _) => write!(f, "p99 at {TARGET_RATE}/s < {TARGET_P99_MS} ms, nothing lost: {}", verdict(met)),
            _ => write!(f, "p99 at {TARGET_RATE}/s: not measured (add {TARGET_RATE} to --rates)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::bench::Processes;
    use crate::loadgen::traffic::Format;
    use std::time::Duration;

    #[test]
    fn the_router_thread_setting_is_read_from_its_environment() {
        let environ = b"PATH=/bin\0TOKIO_WORKER_THREADS=3\0TOKIO_WORKER=x=y\0";
        assert_eq!(var_in_environ(environ, "TOKIO_WORKER_THREADS").as_deref(), Some("3"));
        assert_eq!(var_in_environ(environ, "TOKIO_WORKER").as_deref(), Some("x=y"));
        assert_eq!(var_in_environ(environ, "TOKIO"), None);
        // No such process: not "one per CPU" but the caller's word, or unknown.
        let expected = std::env::var("ROUTER_THREADS").unwrap_or_else(|_| "unknown".into());
        assert_eq!(router_threads(Some(u32::MAX)), expected);
    }

    fn report(runs: &[(f64, u64)]) -> BenchReport {
        let options = BenchOptions {
            nats_url: String::new(),
            grpc_url: String::new(),
            prefix: "support".into(),
            rates: vec![TARGET_RATE],
            step: Duration::from_secs(1),
            repeat: runs.len() as u32,
            saturation: Duration::from_secs(1),
            warmup: Duration::ZERO,
            agents: 1,
            max_concurrent: 1,
            connections: 0,
            format: Format::Json,
            backlog: 1,
            seed: 1,
            processes: Processes::default(),
        };
        let mut report = BenchReport::new(&options, "2.15.1");
        for (i, &(p99_ms, lost)) in runs.iter().enumerate() {
            let latency =
                LatencySummary { samples: 100, p50_ms: 1.0, p99_ms, p999_ms: p99_ms, max_ms: p99_ms, mean_ms: 1.0 };
            report.fixed_rates.push(FixedRate {
                run: i as u32 + 1,
                target_per_sec: TARGET_RATE,
                published_per_sec: 5000.0,
                published: 100,
                offered: 100 - lost,
                publish_errors: 0,
                latency: Some(latency),
                schedule_lag: None,
            });
        }
        report.finish();
        report
    }

    #[test]
    fn the_p99_verdict_takes_the_median_of_the_runs_and_every_run_must_lose_nothing() {
        let r = report(&[(17.7, 0), (30.0, 0), (19.0, 0)]);
        assert_eq!((r.p99_ms_at_5000.clone(), r.p99_ms_at_5000_median), (vec![17.7, 30.0, 19.0], Some(19.0)));
        assert_eq!(r.p99_at_5000_met, Some(true));
        assert!(r.to_string().ends_with("met (median 19.0 ms of runs 17.7, 30.0, 19.0)"), "{r}");
        assert_eq!(report(&[(17.7, 0), (30.0, 0), (21.0, 0)]).p99_at_5000_met, Some(false));
        assert_eq!(report(&[(17.7, 0), (18.0, 1), (19.0, 0)]).p99_at_5000_met, Some(false), "one was lost");
        let single = report(&[(19.2, 0)]);
        assert_eq!((single.p99_at_5000_met, single.p99_ms_at_5000_median), (Some(true), Some(19.2)));
        assert!(single.to_string().ends_with("nothing lost: met"), "{single}");
        assert_eq!(report(&[(15.0, 0), (25.0, 0)]).p99_ms_at_5000_median, Some(25.0), "the higher of two");
        assert_eq!(report(&[]).p99_at_5000_met, None);
    }

    #[test]
    fn router_memory_is_the_resident_growth_per_routed_inquiry() {
        let memory = RouterMemory::new([64 << 20, (64 << 20) + 10_000_000, 100 << 20], 10_000);
        assert_eq!(memory.bytes_per_inquiry, 1000.0);
        assert_eq!(RouterMemory::new([2_000, 1_000, 1_000], 0).bytes_per_inquiry, 0.0, "shrinking is no growth");
        let mut r = report(&[(19.0, 0)]);
        r.router_memory = Some(memory);
        assert!(
            r.to_string()
                .contains("router memory (RSS): 64 -> 74 MiB over the 10000 inquiries of the fixed rates (1000 bytes each), 100 MiB after saturation"),
            "{r}"
        );
        let own = crate::loadgen::bench::resident_bytes(std::process::id());
        assert!(own.is_some_and(|bytes| bytes > 0), "this process has resident memory: {own:?}");
    }
}
