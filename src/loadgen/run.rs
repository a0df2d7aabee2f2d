//! A load run: agents staffed over the router's groups, inquiries published
//! along the rate curve, the live status every second, and a summary when
//! the curve ends or the run is stopped (Ctrl-C).

use super::agents::{roster, AgentPool, Behaviour, PoolOptions};
use super::publisher::{self, wall_ms, Sender};
use super::status::{self, LevelEvent, LevelLog, Screen, Snapshot};
use super::traffic::{Format, InquiryMaker, Mix, Profile, Schedule};
use super::{connect_grpc, connect_nats, router_groups, Counters, LoadgenError};
use crate::proto::{ops_client::OpsClient, LoadLevel};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What to run, as the command line gave it.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub nats_url: String,
    /// `http://host:port` of the router's gRPC.
    pub grpc_url: String,
    pub prefix: String,
    pub profile: Profile,
    /// Shown in the status title, e.g. `demo`.
    pub profile_name: String,
    pub agents: usize,
    pub max_concurrent: u32,
    pub handle_time: Duration,
    pub format: Format,
    pub seed: u64,
    pub metrics_url: Option<String>,
    /// A line shown under the title (e.g. the demo's shortened cooldown).
    pub note: Option<String>,
}

/// How a run went.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub elapsed: Duration,
    pub stopped_early: bool,
    /// published, offered, accepted, completed, deflected, withdrawn, errors, agents online.
    pub totals: [u64; 8],
    pub publish_errors: u64,
    pub deadlettered: u64,
    pub grpc_errors: u64,
    pub reconnects: u64,
    /// The router-wide level changes seen on the levels subject.
    pub router_changes: Vec<LevelEvent>,
    pub highest: LoadLevel,
    pub final_level: LoadLevel,
}

impl Summary {
    /// Errors of any kind (publishing, rejected messages, gRPC).
    pub fn errors(&self) -> u64 {
        self.totals[6]
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.totals;
        let how = if self.stopped_early { "stopped" } else { "finished" };
        writeln!(f, "loadgen {how} after {:.0}s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "  published {}  offered {}  accepted {}  completed {}  deflected {}  withdrawn {}",
            t[0], t[1], t[2], t[3], t[4], t[5]
        )?;
        writeln!(
            f,
            "  errors {} (publish {}, dead-lettered {}, gRPC {}); desktop reconnects {}",
            t[6], self.publish_errors, self.deadlettered, self.grpc_errors, self.reconnects
        )?;
        let path: Vec<String> = self
            .router_changes
            .iter()
            .map(|e| format!("{} at {:.0}s", e.to.as_str_name(), e.at.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "  router level: NORMAL -> {}",
            if path.is_empty() { "(no change)".into() } else { path.join(" -> ") }
        )?;
        write!(f, "  highest {}, now {}", self.highest.as_str_name(), self.final_level.as_str_name())
    }
}

/// Runs until the profile ends or `stop` is cancelled.
pub async fn run(options: RunOptions, stop: CancellationToken) -> Result<Summary, LoadgenError> {
    let groups = router_groups(&options.grpc_url, Duration::from_secs(30)).await?;
    let client = connect_nats(&options.nats_url, "ticket-router-loadgen").await?;
    let counters = Counters::shared();
    let log = LevelLog::default();
    let started = Instant::now();
    let watcher =
        status::watch(&client, &options.prefix, counters.clone(), log.clone(), started).await.map_err(|e| {
            LoadgenError::Nats {
                url: crate::adapters::nats::without_password(&options.nats_url),
                detail: e.to_string(),
            }
        })?;
    let specs = roster(&groups, options.agents, options.max_concurrent, "lg");
    let staffed = specs.len() as u64;
    let pool_options =
        PoolOptions { behaviour: Behaviour::people(options.handle_time), connections: 0, seed: options.seed };
    let pool = AgentPool::start(&options.grpc_url, specs, pool_options, counters.clone(), None);
    wait_for(Duration::from_secs(5), || Counters::get(&counters.online) >= staffed).await;

    let publishing = publish_in_background(&client, &options, counters.clone(), stop.clone());
    let mut ops = OpsClient::new(connect_grpc(&options.grpc_url).await?);
    let mut screen = Screen::stdout();
    let mut snapshot = Snapshot {
        title: format!("ticket-router loadgen ({} profile, {} agents)", options.profile_name, staffed),
        total: options.profile.total(),
        metrics_url: options.metrics_url.clone(),
        note: options.note.clone(),
        ..Snapshot::default()
    };
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    while !publishing.is_finished() && !stop.is_cancelled() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.cancelled() => break,
        }
        refresh(&mut snapshot, &mut ops, &options.profile, &counters, &log, started, false).await;
        screen.draw(&snapshot);
    }
    let _ = publishing.await;
    refresh(&mut snapshot, &mut ops, &options.profile, &counters, &log, started, stop.is_cancelled()).await;
    screen.finish();
    pool.stop().await;
    watcher.abort();
    Ok(summarize(&snapshot, &counters, &log, started.elapsed(), stop.is_cancelled()))
}

/// Publishes along the profile (Poisson arrivals, the shop mix) until it
/// ends or `stop`, then waits for the last acknowledgements.
fn publish_in_background(
    client: &async_nats::Client,
    options: &RunOptions,
    counters: Arc<Counters>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let js = async_nats::jetstream::new(client.clone());
    let maker = InquiryMaker::new(&format!("lg{}", wall_ms()), Mix::Shop, options.seed);
    let mut sender = Sender::new(js, &format!("{}.inquiries", options.prefix), options.format, maker, counters);
    let schedule = Schedule::new(&options.profile, true, options.seed);
    tokio::spawn(async move {
        publisher::along(&mut sender, schedule, &stop, |_, _| {}).await;
        sender.finish().await;
    })
}

async fn refresh(
    snapshot: &mut Snapshot,
    ops: &mut OpsClient<tonic::transport::Channel>,
    profile: &Profile,
    counters: &Counters,
    log: &LevelLog,
    started: Instant,
    stopping: bool,
) {
    snapshot.elapsed = started.elapsed();
    snapshot.phase = profile.phase_at(snapshot.elapsed).map(|(_, p)| (p.name.clone(), p.per_sec));
    snapshot.problem = match status::poll(ops, snapshot).await {
        Ok(()) => None,
        Err(e) => {
            // After Ctrl-C the router may be stopping too; that is no error.
            if !stopping {
                Counters::bump(&counters.grpc_errors);
            }
            Some(format!("unreachable ({})", e.message()))
        }
    };
    snapshot.totals = totals(counters);
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    snapshot.recent = log[log.len().saturating_sub(6)..].to_vec();
}

fn totals(c: &Counters) -> [u64; 8] {
    let g = Counters::get;
    [
        g(&c.published),
        g(&c.offered),
        g(&c.accepted),
        g(&c.completed),
        g(&c.deflected),
        g(&c.withdrawn),
        c.errors(),
        g(&c.online),
    ]
}

fn summarize(snapshot: &Snapshot, c: &Counters, log: &LevelLog, elapsed: Duration, stopped: bool) -> Summary {
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    let router_changes: Vec<LevelEvent> = log.iter().filter(|e| e.scope == "router").cloned().collect();
    let highest = router_changes.iter().map(|e| e.to).chain([snapshot.router_level]).max().unwrap_or_default();
    Summary {
        elapsed,
        stopped_early: stopped,
        totals: totals(c),
        publish_errors: Counters::get(&c.publish_errors),
        deadlettered: Counters::get(&c.deadlettered),
        grpc_errors: Counters::get(&c.grpc_errors),
        reconnects: Counters::get(&c.reconnects),
        router_changes,
        highest,
        final_level: snapshot.router_level,
    }
}

/// Polls `ready` every 50 ms for up to `limit`.
pub async fn wait_for(limit: Duration, ready: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}
