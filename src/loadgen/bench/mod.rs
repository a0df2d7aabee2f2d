//! Benchmark mode: in one run on one NATS server,
//!
//! 1. the raw ceiling ([`raw`]): JetStream publish, consume and ack of the
//!    same payloads with no router;
//! 2. the agent protocol alone ([`floor`]): agents like the router's against a desk
//!    in this process that only offers, and the bound the two costs put on
//!    any router on this machine;
//! 3. fixed offered rates: inquiries published evenly at each rate to the
//!    router, each timestamped as it leaves, and the publish → offer latency
//!    measured when the offer reaches an agent's desktop stream;
//! 4. router saturation: published as fast as a bounded backlog allows, with
//!    agents that accept and complete at once (capacity is never the limit),
//!    counting offers per second at the agents.
//!
//! Inquiries use the shop mix with pre-sales marked as already tried by the
//! bot (at SURGE they would be deflected, not offered). [`report`] prints the
//! table and writes the JSON.

pub mod floor;
pub mod raw;
pub mod report;

use super::agents::{AgentPool, AgentSpec, Behaviour, OnOffer, PoolOptions};
use super::latency::{summarize, LatencyBook};
use super::publisher::{along, flat_out, wall_ms, Sender};
use super::run::wait_for;
use super::traffic::{Format, InquiryMaker, Mix, Profile, Schedule};
use super::{connect_nats, router_groups, Counters, LoadgenError};
use report::{BenchReport, FixedRate, RouterMemory};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub nats_url: String,
    pub grpc_url: String,
    pub prefix: String,
    /// Fixed offered rates, inquiries per second.
    pub rates: Vec<u32>,
    /// How long each fixed rate runs.
    pub step: Duration,
    /// Runs of all the fixed rates, one after another.
    pub repeat: u32,
    /// How long the two saturation measurements run (after `warmup`).
    pub saturation: Duration,
    pub warmup: Duration,
    pub agents: usize,
    pub max_concurrent: u32,
    /// HTTP/2 connections the agents share (0: one each).
    pub connections: usize,
    pub format: Format,
    /// Most inquiries published but not yet consumed (offered) at saturation.
    pub backlog: u64,
    pub seed: u64,
    /// Other processes to account CPU time to (e.g. the router, nats-server).
    pub processes: Processes,
}

/// A measured rate, and the CPU time each process spent per message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    pub per_sec: f64,
    pub messages: u64,
    pub seconds: f64,
    /// Microseconds of CPU (user + system) per message, by process.
    pub cpu_us_per_message: BTreeMap<String, f64>,
    /// Publishes the stream did not acknowledge (not counted as routed).
    pub publish_errors: u64,
}

/// Processes whose CPU time is measured: loadgen itself and those given.
#[derive(Clone, Debug, Default)]
pub struct Processes(pub Vec<(String, u32)>);

impl Processes {
    /// The pid given for `name`.
    pub(crate) fn pid(&self, name: &str) -> Option<u32> {
        self.0.iter().find(|(n, _)| n == name).map(|&(_, pid)| pid)
    }

    /// CPU seconds used so far by each process (absent when unreadable).
    fn cpu_seconds(&self) -> Vec<Option<f64>> {
        self.0.iter().map(|(_, pid)| cpu_seconds(*pid)).collect()
    }
}

/// User + system CPU seconds of `pid` so far, from `/proc/<pid>/stat`
/// (fields 14 and 15, in USER_HZ = 100 ticks per second on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Resident memory of `pid` in bytes, from `VmRSS` in `/proc/<pid>/status`.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Counts with `count` over `duration` after `warmup`, and the CPU time of
/// `processes` over the same window.
pub async fn measure(
    warmup: Duration,
    duration: Duration,
    count: impl Fn() -> u64,
    processes: &Processes,
) -> Throughput {
    tokio::time::sleep(warmup).await;
    let (first, cpu_before, started) = (count(), processes.cpu_seconds(), Instant::now());
    tokio::time::sleep(duration).await;
    let messages = count().saturating_sub(first);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_us_per_message = processes
        .0
        .iter()
        .zip(cpu_before.into_iter().zip(processes.cpu_seconds()))
        .filter_map(|((name, _), (before, after))| {
            Some((name.clone(), (after? - before?) * 1e6 / messages.max(1) as f64))
        })
        .collect();
    Throughput { per_sec: messages as f64 / seconds, messages, seconds, cpu_us_per_message, publish_errors: 0 }
}

/// Routes each offer to the latency book of the step in progress.
#[derive(Clone, Default)]
struct Tap(Arc<Mutex<Option<Arc<LatencyBook>>>>);

impl Tap {
    fn set(&self, book: Option<Arc<LatencyBook>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = book;
    }

    fn callback(&self) -> OnOffer {
        let tap = self.0.clone();
        Arc::new(move |offer| {
            let book = tap.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let (Some(book), Some(inquiry)) = (book, offer.inquiry.as_ref()) {
                book.observe(&inquiry.id);
            }
        })
    }
}

/// Runs the whole benchmark and returns its report.
pub async fn run(options: BenchOptions) -> Result<BenchReport, LoadgenError> {
    let client = connect_nats(&options.nats_url, "ticket-router-bench").await?;
    let mut report = BenchReport::new(&options, &client.server_info().version);
    let run = format!("b{}", wall_ms());
    eprintln!("bench: raw JetStream ceiling ({:?} after {:?} warm-up)", options.saturation, options.warmup);
    report.raw_ceiling = raw::ceiling(&client, &options, &run).await?;
    eprintln!("bench: raw ceiling {:.0}/s", report.raw_ceiling.per_sec);
    eprintln!(
        "bench: agent RPCs against a desk that only offers ({:?} after {:?} warm-up)",
        options.saturation, options.warmup
    );
    let floor = floor::measure_exchange(&options, &run).await?;
    report.agent_protocol = floor.with_bound(&report.raw_ceiling, report.machine.nproc);
    eprintln!("bench: agent RPCs {:.0}/s", report.agent_protocol.exchange.per_sec);

    let groups = router_groups(&options.grpc_url, Duration::from_secs(30)).await?;
    let specs: Vec<AgentSpec> = (1..=options.agents)
        .map(|i| AgentSpec {
            id: format!("{run}-agent-{i:03}"),
            groups: groups.iter().map(|g| (g.clone(), 3)).collect(),
            max_concurrent: options.max_concurrent,
        })
        .collect();
    let (counters, tap) = (Counters::shared(), Tap::default());
    let pool_options = PoolOptions { behaviour: Behaviour::instant(), connections: options.connections, seed: 7 };
    let pool = AgentPool::start(&options.grpc_url, specs, pool_options, counters.clone(), Some(tap.callback()));
    wait_for(Duration::from_secs(10), || Counters::get(&counters.online) >= options.agents as u64).await;
    let js = async_nats::jetstream::new(client.clone());
    let router = options.processes.pid("router");
    let rss = || router.and_then(resident_bytes);
    if let Some(&first) = options.rates.first() {
        // Connections, caches and the router's tables warm up unmeasured.
        eprintln!("bench: warm-up at {first}/s for {:?}", options.warmup);
        warm_up(&js, &options, &format!("{run}-warm"), first).await;
    }
    let (rss_before, offered_before) = (rss(), Counters::get(&counters.offered));
    for round in 1..=options.repeat.max(1) {
        for &rate in &options.rates {
            eprintln!("bench: router at {rate}/s for {:?} (run {round} of {})", options.step, options.repeat);
            let mut step = fixed_rate(&js, &options, &format!("{run}-{round}"), rate, &tap).await;
            step.run = round;
            eprintln!("bench: {}", step.line());
            report.fixed_rates.push(step);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let (rss_fixed, offered_fixed) = (rss(), Counters::get(&counters.offered) - offered_before);
    eprintln!("bench: router at saturation ({:?} after {:?} warm-up)", options.saturation, options.warmup);
    report.router_saturation = saturate(&js, &options, &run, &counters).await;
    eprintln!("bench: router saturation {:.0}/s", report.router_saturation.per_sec);
    if let (Some(before), Some(fixed), Some(saturated)) = (rss_before, rss_fixed, rss()) {
        report.router_memory = Some(RouterMemory::new([before, fixed, saturated], offered_fixed));
    }
    report.agent_errors = counters.errors();
    pool.stop().await;
    report.finish();
    Ok(report)
}

fn sender(js: &async_nats::jetstream::Context, options: &BenchOptions, run: &str, counters: Arc<Counters>) -> Sender {
    let maker = InquiryMaker::new(run, Mix::NoDeflection, options.seed);
    Sender::new(js.clone(), &format!("{}.inquiries", options.prefix), options.format, maker, counters)
}

/// Publishes at `rate` for the warm-up time, unmeasured, and lets it drain.
async fn warm_up(js: &async_nats::jetstream::Context, options: &BenchOptions, run: &str, rate: u32) {
    let counters = Counters::shared();
    let mut sender = sender(js, options, run, counters.clone());
    let schedule = Schedule::new(&Profile::steady(f64::from(rate), options.warmup), false, options.seed);
    along(&mut sender, schedule, &CancellationToken::new(), |_, _| {}).await;
    sender.finish().await;
    let failed = Counters::get(&counters.publish_errors);
    if failed > 0 {
        eprintln!("bench: {failed} warm-up publishes were not acknowledged; is the stream healthy?");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// One fixed rate: evenly spaced publishes, latency per offer.
async fn fixed_rate(
    js: &async_nats::jetstream::Context,
    options: &BenchOptions,
    run: &str,
    rate: u32,
    tap: &Tap,
) -> FixedRate {
    let id_run = format!("{run}-r{rate}");
    let capacity = (f64::from(rate) * options.step.as_secs_f64() * 1.05) as usize + 1_000;
    let book = Arc::new(LatencyBook::new(&id_run, capacity));
    tap.set(Some(book.clone()));
    let counters = Counters::shared();
    let mut sender = sender(js, options, &id_run, counters.clone());
    let schedule = Schedule::new(&Profile::steady(f64::from(rate), options.step), false, options.seed);
    let started = Instant::now();
    let mut lag = Vec::with_capacity(capacity);
    let mark = |inquiry: &crate::proto::Inquiry, due: Instant| {
        lag.push(due.elapsed().as_micros() as u64);
        book.mark_at(&inquiry.id, due);
    };
    along(&mut sender, schedule, &CancellationToken::new(), mark).await;
    let seconds = started.elapsed().as_secs_f64();
    let sent = sender.sent();
    sender.finish().await;
    wait_for(Duration::from_secs(20), || book.seen() as u64 >= sent).await;
    tap.set(None);
    let samples = book.take();
    FixedRate {
        run: 1,
        target_per_sec: rate,
        published_per_sec: sent as f64 / seconds,
        published: sent,
        offered: samples.len() as u64,
        publish_errors: counters.errors(),
        latency: summarize(samples),
        schedule_lag: summarize(lag),
    }
}

/// Offers per second at the agents with the router always having a backlog.
async fn saturate(
    js: &async_nats::jetstream::Context,
    options: &BenchOptions,
    run: &str,
    counters: &Arc<Counters>,
) -> Throughput {
    let first = Counters::get(&counters.offered);
    let offered = || Counters::get(&counters.offered) - first;
    let publishing_counters = Counters::shared();
    let mut sender = sender(js, options, &format!("{run}-sat"), publishing_counters.clone());
    let backlog = options.backlog;
    let refused = || Counters::get(&publishing_counters.publish_errors);
    let full = |sent: u64| sent.saturating_sub(refused()).saturating_sub(offered()) > backlog;
    let stop = CancellationToken::new();
    let publishing = flat_out(&mut sender, options.warmup + options.saturation, &stop, full);
    let measuring = measure(options.warmup, options.saturation, offered, &options.processes);
    let (_, mut throughput) = tokio::join!(publishing, measuring);
    let sent = sender.sent();
    sender.finish().await;
    // What the stream refused never reached the router: not the router's to offer.
    throughput.publish_errors = Counters::get(&publishing_counters.publish_errors);
    let stored = sent.saturating_sub(throughput.publish_errors);
    if throughput.publish_errors > 0 {
        eprintln!("bench: {} publishes at saturation were not acknowledged", throughput.publish_errors);
    }
    if !wait_for(Duration::from_secs(60), || offered() >= stored).await {
        eprintln!("bench: {} of {stored} stored inquiries were not offered within 60 s", stored - offered());
    }
    throughput
}
