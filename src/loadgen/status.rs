//! The live status of a load run: every second `Ops.GetQueues` and
//! `Ops.GetStaffing` give each group's level, queue by band, oldest wait,
//! reserve in force, occupancy and recommended agents; the `support.levels`,
//! `support.deflections.>` and `support.deadletter` subjects give level
//! changes, deflections and rejected messages. On a terminal the table is
//! redrawn in place with ANSI escapes; otherwise one plain line per second.
//!
//! Reads only: the status never changes the router.

use super::Counters;
use crate::adapters::codec;
use crate::proto::{self, ops_client::OpsClient, LoadLevel};
use futures::StreamExt;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// A level change seen on `<prefix>.levels`, `at` since the run started.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelEvent {
    pub at: Duration,
    pub scope: String,
    pub from: LoadLevel,
    pub to: LoadLevel,
    pub reason: String,
}

/// Every level change of the run, oldest first.
pub type LevelLog = Arc<Mutex<Vec<LevelEvent>>>;

/// Subscribes to levels, deflections and dead letters under `prefix`; the
/// returned task counts into `counters` and `log` until the client closes.
pub async fn watch(
    client: &async_nats::Client,
    prefix: &str,
    counters: Arc<Counters>,
    log: LevelLog,
    started: Instant,
) -> Result<tokio::task::JoinHandle<()>, async_nats::SubscribeError> {
    let levels = client.subscribe(format!("{prefix}.levels")).await?;
    let deflections = client.subscribe(format!("{prefix}.deflections.>")).await?;
    let dead = client.subscribe(format!("{prefix}.deadletter")).await?;
    let counts = {
        let counters = counters.clone();
        futures::stream::select(deflections.map(|_| true), dead.map(|_| false)).for_each(move |deflection| {
            Counters::bump(if deflection { &counters.deflected } else { &counters.deadlettered });
            futures::future::ready(())
        })
    };
    let changes = levels.for_each(move |message| {
        let content_type = message.headers.as_ref().and_then(|h| h.get("Content-Type")).map(|v| v.as_str());
        if let Ok(change) = codec::decode_as::<proto::LevelChanged>(content_type, &message.payload) {
            let event = LevelEvent {
                at: started.elapsed(),
                scope: change.scope.clone(),
                from: change.from(),
                to: change.to(),
                reason: change.reason,
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(event);
        }
        futures::future::ready(())
    });
    Ok(tokio::spawn(async move {
        futures::join!(counts, changes);
    }))
}

/// One group's line of the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupRow {
    pub group: String,
    pub level: LoadLevel,
    pub arrivals_per_min: f64,
    /// Waiting by band: high, normal, low.
    pub waiting: [u32; 3],
    pub oldest_wait_s: f64,
    pub reserve_ratio: f64,
    pub reserved_slots: u32,
    pub occupancy: f64,
    pub available: u32,
    pub recommended: u32,
}

/// Everything one frame shows.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub title: String,
    pub elapsed: Duration,
    pub total: Duration,
    /// The phase in force and its rate per second.
    pub phase: Option<(String, f64)>,
    pub router_level: LoadLevel,
    pub groups: Vec<GroupRow>,
    /// published, offered, accepted, completed, deflected, withdrawn, errors, agents online.
    pub totals: [u64; 8],
    pub metrics_url: Option<String>,
    pub note: Option<String>,
    pub recent: Vec<LevelEvent>,
    /// Why the router could not be asked, when it could not.
    pub problem: Option<String>,
}

/// Asks the router for the groups' state; fills `snapshot.groups` and level.
pub async fn poll(ops: &mut OpsClient<Channel>, snapshot: &mut Snapshot) -> Result<(), tonic::Status> {
    let queues = ops.get_queues(proto::GetQueuesRequest {}).await?.into_inner();
    let staffing = ops.get_staffing(proto::GetStaffingRequest {}).await?.into_inner();
    snapshot.router_level = queues.router_level();
    snapshot.groups = queues
        .groups
        .iter()
        .map(|q| {
            let staff = staffing.groups.iter().find(|s| s.group == q.group);
            let available = q.agents.iter().find(|a| a.status() == proto::AgentStatus::Available);
            GroupRow {
                group: q.group.clone(),
                level: q.level(),
                arrivals_per_min: staff.map_or(0.0, |s| s.arrivals_per_minute),
                waiting: [q.waiting_high, q.waiting_normal, q.waiting_low],
                oldest_wait_s: q.oldest_wait_seconds,
                reserve_ratio: q.reserved_capacity_ratio,
                reserved_slots: q.reserved_slots,
                occupancy: q.occupancy,
                available: available.map_or(0, |a| a.count),
                recommended: q.recommended_agents,
            }
        })
        .collect();
    Ok(())
}

fn level_name(level: LoadLevel, color: bool) -> String {
    let (name, code) = match level {
        LoadLevel::Normal => ("NORMAL", "32"),
        LoadLevel::Peak => ("PEAK", "33"),
        LoadLevel::Surge => ("SURGE", "1;31"),
    };
    if color {
        format!("\x1b[{code}m{name:<6}\x1b[0m")
    } else {
        format!("{name:<6}")
    }
}

fn clock(d: Duration) -> String {
    format!("{:02}:{:02}", d.as_secs() / 60, d.as_secs() % 60)
}

/// The full table, one string per line (ANSI colours when `color`).
pub fn render_table(s: &Snapshot, color: bool) -> Vec<String> {
    let phase = s.phase.as_ref().map_or("finished".to_string(), |(name, rate)| format!("{name} {rate:.1}/s"));
    let mut lines = vec![
        format!(
            "{} | {} / {} | phase {phase} | router {}",
            s.title,
            clock(s.elapsed),
            clock(s.total),
            level_name(s.router_level, color)
        ),
        format!("metrics: {}", s.metrics_url.as_deref().unwrap_or("(not given: --metrics-url)")),
    ];
    lines.extend(s.note.clone());
    lines.push(String::new());
    lines.push(format!(
        "{:<12} {:<6} {:>7}  {:>11}  {:>6}  {:>9}  {:>4}  {:>5}  {:>6}",
        "group", "level", "arr/min", "wait H/N/L", "oldest", "reserve", "occ", "avail", "advice"
    ));
    lines.extend(s.groups.iter().map(|g| group_line(g, color)));
    let t = s.totals;
    lines.push(String::new());
    lines.push(format!(
        "published {}  offered {}  accepted {}  completed {}  deflected {}  withdrawn {}  errors {}  agents online {}",
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]
    ));
    if let Some(problem) = &s.problem {
        lines.push(format!("router: {problem}"));
    }
    lines.push("level changes (latest last):".to_string());
    for e in &s.recent {
        lines.push(format!(
            "  {}  {:<18} {} -> {}  {}",
            clock(e.at),
            e.scope,
            level_name(e.from, color),
            level_name(e.to, color),
            e.reason
        ));
    }
    lines
}

fn group_line(g: &GroupRow, color: bool) -> String {
    format!(
        "{:<12} {} {:>7.1}  {:>11}  {:>5.0}s  {:>4.0}% ({:>2})  {:>4.2}  {:>5}  {:>6}",
        g.group,
        level_name(g.level, color),
        g.arrivals_per_min,
        format!("{}/{}/{}", g.waiting[0], g.waiting[1], g.waiting[2]),
        g.oldest_wait_s,
        g.reserve_ratio * 100.0,
        g.reserved_slots,
        g.occupancy,
        g.available,
        g.recommended,
    )
}

/// One plain line: time, phase, levels per group and the totals.
pub fn render_line(s: &Snapshot) -> String {
    let phase = s.phase.as_ref().map_or("finished".to_string(), |(name, rate)| format!("{name} {rate:.1}/s"));
    let groups: Vec<String> = s
        .groups
        .iter()
        .map(|g| {
            let waiting: u32 = g.waiting.iter().sum();
            format!("{}={} q{} {:.0}s", g.group, g.level.as_str_name(), waiting, g.oldest_wait_s)
        })
        .collect();
    let t = s.totals;
    format!(
        "[{}] {phase} router={} | {} | published={} offered={} accepted={} completed={} deflected={} errors={}",
        clock(s.elapsed),
        s.router_level.as_str_name(),
        groups.join(" "),
        t[0],
        t[1],
        t[2],
        t[3],
        t[4],
        t[6]
    )
}

/// Draws frames: in place on a terminal, as lines otherwise.
pub struct Screen {
    terminal: bool,
    drawn: bool,
}

impl Screen {
    /// A screen for stdout.
    pub fn stdout() -> Screen {
        Screen { terminal: std::io::IsTerminal::is_terminal(&std::io::stdout()), drawn: false }
    }

    /// Shows `snapshot`.
    pub fn draw(&mut self, snapshot: &Snapshot) {
        let mut out = std::io::stdout().lock();
        let _ = if self.terminal {
            let clear = if self.drawn { "\x1b[H" } else { "\x1b[?25l\x1b[2J\x1b[H" };
            self.drawn = true;
            let body: String = render_table(snapshot, true).iter().map(|l| format!("{l}\x1b[K\n")).collect();
            write!(out, "{clear}{body}\x1b[J")
        } else {
            writeln!(out, "{}", render_line(snapshot))
        };
        let _ = out.flush();
    }

    /// Gives the cursor back.
    pub fn finish(&mut self) {
        if self.terminal && self.drawn {
            print!("\x1b[?25h");
            let _ = std::io::stdout().flush();
        }
    }
}
