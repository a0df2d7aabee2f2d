//! Prometheus metrics (SPEC section 8): the names, the recorder, the `/metrics`
//! endpoint, and the sink that turns the core's effects and views into counts
//! and gauges. The core itself emits nothing.
//!
//! Labels are bounded: groups and reasons come from the configuration and
//! fixed enums, never from inquiries, customers or shops.

use super::codec::RejectReason;
use super::engine::EffectSink;
use crate::core::{AgentStatus, Effect, EventKind, Level, Millis, Router};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;
use tokio::net::TcpListener;

pub const QUEUE_LENGTH: &str = "ticket_router_queue_length";
pub const QUEUE_OLDEST_WAIT: &str = "ticket_router_queue_oldest_wait_seconds";
pub const QUEUE_UNSERVABLE: &str = "ticket_router_queue_unservable";
pub const LOAD_LEVEL: &str = "ticket_router_load_level";
pub const INQUIRIES: &str = "ticket_router_inquiries_total";
pub const WAIT: &str = "ticket_router_wait_seconds";
pub const ROUTING_DURATION: &str = "ticket_router_routing_duration_seconds";
pub const AGENTS: &str = "ticket_router_agents";
pub const DISTINCT_AGENTS: &str = "ticket_router_distinct_agents";
pub const OCCUPANCY: &str = "ticket_router_occupancy_ratio";
pub const RESERVED_CAPACITY: &str = "ticket_router_reserved_capacity_ratio";
pub const RECOMMENDED_AGENTS: &str = "ticket_router_recommended_agents";
pub const HANDOFFS: &str = "ticket_router_handoffs_total";
pub const OFFER_TIMEOUTS: &str = "ticket_router_offer_timeouts_total";
pub const DEADLETTER: &str = "ticket_router_deadletter_total";
pub const DEADLETTER_FAILURES: &str = "ticket_router_deadletter_failures_total";
pub const SERVING: &str = "ticket_router_serving";

/// Seconds-scale waits: the 30 s first-response target and the 3 min alert sit on bucket edges.
const WAIT_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0];
/// One routing decision takes microseconds.
const ROUTING_BUCKETS: &[f64] = &[1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2];

/// Outcomes of `ticket_router_inquiries_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Received,
    Assigned,
    Deflected,
    Cancelled,
    Duplicate,
    Rejected,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Received,
        Outcome::Assigned,
        Outcome::Deflected,
        Outcome::Cancelled,
        Outcome::Duplicate,
        Outcome::Rejected,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Received => "received",
            Outcome::Assigned => "assigned",
            Outcome::Deflected => "deflected",
            Outcome::Cancelled => "cancelled",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Counts one inquiry outcome.
pub fn count(outcome: Outcome) {
    counter!(INQUIRIES, "outcome" => outcome.label()).increment(1);
}

/// One failed attempt to dead-letter a rejected message: left
/// unacknowledged, it comes again, and without this nothing would say so.
pub fn count_deadletter_failure() {
    counter!(DEADLETTER_FAILURES).increment(1);
}

/// Counts one dead-lettered message, and as a rejected inquiry unless it
/// was a cancellation (`inquiry` false): those are no inquiries.
pub fn count_deadletter(reason: RejectReason, inquiry: bool) {
    counter!(DEADLETTER, "reason" => reason.as_str()).increment(1);
    if inquiry {
        count(Outcome::Rejected);
    }
}

/// Observes the duration of one routing decision.
pub fn observe_decision(took: Duration) {
    histogram!(ROUTING_DURATION).record(took.as_secs_f64());
}

/// Installs the process-wide recorder with our buckets. Call once.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(WAIT.into()), WAIT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(ROUTING_DURATION.into()), ROUTING_BUCKETS)?
        .install_recorder()?;
    describe();
    for outcome in Outcome::ALL {
        counter!(INQUIRIES, "outcome" => outcome.label()).absolute(0);
    }
    for reason in RejectReason::ALL {
        counter!(DEADLETTER, "reason" => reason.as_str()).absolute(0);
    }
    counter!(DEADLETTER_FAILURES).absolute(0);
    set_serving(false);
    Ok(handle)
}

/// Whether the router consumes and records (what gRPC health says): the
/// scrape keeps answering while NATS is away, so `up` alone cannot tell.
pub fn set_serving(serving: bool) {
    gauge!(SERVING).set(if serving { 1.0 } else { 0.0 });
}

/// Help texts, so every series documents itself (and `promtool check metrics` is clean).
fn describe() {
    describe_gauge!(QUEUE_LENGTH, "Inquiries waiting in a group's queue, by priority band.");
    describe_gauge!(QUEUE_OLDEST_WAIT, Unit::Seconds, "How long the longest-waiting inquiry of a group has waited.");
    describe_gauge!(
        QUEUE_UNSERVABLE,
        "Inquiries waiting in a group that no agent on duty there could serve (language, skills); left out of its load level."
    );
    describe_gauge!(LOAD_LEVEL, "Load level in force: 0 normal, 1 peak, 2 surge; scope is the router or a group.");
    describe_counter!(
        INQUIRIES,
        "Inquiries by outcome: received, assigned, deflected, cancelled, duplicate, rejected."
    );
    describe_histogram!(WAIT, Unit::Seconds, "Time from receipt to an accepted offer, by the group it waited in.");
    describe_histogram!(ROUTING_DURATION, Unit::Seconds, "Time the core took to decide one arriving inquiry.");
    describe_gauge!(AGENTS, "Agents who are members of a group, by status.");
    describe_gauge!(
        DISTINCT_AGENTS,
        "Agents the router knows, by status, each counted once whatever its groups (the team's head count)."
    );
    describe_gauge!(OCCUPANCY, "Chats over capacity of a group's agents on duty (AVAILABLE or on BREAK).");
    describe_gauge!(
        RESERVED_CAPACITY,
        "Share of a group's capacity held back for HIGH band work now (the headroom in force, in whole slots)."
    );
    describe_gauge!(
        RECOMMENDED_AGENTS,
        "Erlang C agents needed for the service level, plus the level's standby reserve."
    );
    describe_counter!(HANDOFFS, "Transfers and escalations, by kind and groups.");
    describe_counter!(OFFER_TIMEOUTS, "Offers not accepted within the group's accept timeout.");
    describe_counter!(DEADLETTER, "Inbound messages rejected to the dead-letter subject, by reason.");
    describe_counter!(
        DEADLETTER_FAILURES,
        "Failed attempts to store a rejected inbound message in the dead-letter stream, one per delivery; the message is left unacknowledged and comes again."
    );
    describe_gauge!(
        SERVING,
        "1 while the router consumes inquiries from NATS, records its decisions and its engine runs (gRPC health SERVING), else 0."
    );
}

/// How often histogram samples are folded into their buckets. The exporter
/// keeps every raw sample until then, so without this a router nobody
/// scrapes (Prometheus down, or not set up yet) grows by every decision.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Calls `upkeep` every `period`, the first time one period from now.
async fn every(period: Duration, mut upkeep: impl FnMut()) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        upkeep();
    }
}

/// Serves `GET /metrics` and `GET /livez` on `listener` until `shutdown`
/// resolves, and keeps the recorder's memory bounded meanwhile whether or not
/// anyone scrapes.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    engine_alive: tokio::sync::watch::Receiver<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn(every(UPKEEP_EVERY, {
        let handle = handle.clone();
        move || handle.run_upkeep()
    }));
    let served = serve_scrapes(listener, handle, engine_alive, shutdown).await;
    upkeep.abort();
    served
}

async fn serve_scrapes(
    listener: TcpListener,
    handle: PrometheusHandle,
    engine_alive: tokio::sync::watch::Receiver<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scrape = move || {
        let handle = handle.clone();
        async move {
            handle.run_upkeep();
            ([("content-type", "text/plain; version=0.0.4")], handle.render())
        }
    };
    let livez = move || std::future::ready(liveness(*engine_alive.borrow()));
    let app =
        axum::Router::new().route("/metrics", axum::routing::get(scrape)).route("/livez", axum::routing::get(livez));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// The liveness probe's answer. Only a stuck engine fails it: a restart
/// helps with that and with nothing else (not with NATS being away, which
/// health reports).
fn liveness(engine_alive: bool) -> (axum::http::StatusCode, String) {
    if engine_alive {
        (axum::http::StatusCode::OK, "ok\n".into())
    } else {
        let stuck = crate::adapters::watchdog::STUCK_AFTER.as_secs();
        let why =
            format!("the routing engine has not ticked for {stuck} s: a command does not end; restart the router\n");
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, why)
    }
}

fn status_label(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Available => "available",
        AgentStatus::Away => "away",
        AgentStatus::Break => "break",
        AgentStatus::Offline => "offline",
    }
}

fn level_value(level: Level) -> f64 {
    level.index() as f64
}

/// Counts effects and samples the router's gauges after every tick.
#[derive(Default)]
pub struct MetricsSink {
    /// Groups whose offer-timeout counter exists (at 0 until the first).
    timeouts_listed: usize,
}

impl EffectSink for MetricsSink {
    fn prepare(&mut self, _now: Millis, effects: &[Effect], _router: &Router) -> Option<super::engine::Release> {
        for effect in effects {
            match effect {
                Effect::Deflect { .. } => count(Outcome::Deflected),
                Effect::Event(e) => match e.kind {
                    // Once per inquiry: a chat handed off and accepted again
                    // was assigned, and waited, only once.
                    EventKind::Accepted => {
                        if let Some(waited_ms) = e.waited_ms {
                            count(Outcome::Assigned);
                            // The queue it waited in, like the queue gauges.
                            let group = e.waited_in.as_ref().unwrap_or(&e.group).to_string();
                            histogram!(WAIT, "group" => group).record(waited_ms as f64 / 1000.0);
                        }
                    }
                    EventKind::Cancelled => count(Outcome::Cancelled),
                    EventKind::TimedOut => counter!(OFFER_TIMEOUTS, "group" => e.group.to_string()).increment(1),
                    EventKind::Transferred | EventKind::Escalated => {
                        let kind = if e.kind == EventKind::Transferred { "transfer" } else { "escalation" };
                        let from = e.from_group.as_deref().unwrap_or_default().to_string();
                        counter!(HANDOFFS, "kind" => kind, "from_group" => from, "to_group" => e.group.to_string())
                            .increment(1);
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        None
    }

    fn refresh(&mut self, now: Millis, router: &Router) {
        let groups = &router.settings().groups;
        // A series from the start, so a quiet router's panel shows 0, not "no data".
        for g in &groups[self.timeouts_listed.min(groups.len())..] {
            counter!(OFFER_TIMEOUTS, "group" => g.id.clone()).increment(0);
        }
        self.timeouts_listed = groups.len();
        gauge!(LOAD_LEVEL, "scope" => "router").set(level_value(router.router_level()));
        for (status, n) in AgentStatus::ALL.into_iter().zip(router.agents_by_status()) {
            gauge!(DISTINCT_AGENTS, "status" => status_label(status)).set(f64::from(n));
        }
        for g in router.groups(now) {
            let group = g.id.to_string();
            for (band, waiting) in ["high", "normal", "low"].into_iter().zip(g.waiting) {
                gauge!(QUEUE_LENGTH, "group" => group.clone(), "band" => band).set(f64::from(waiting));
            }
            gauge!(QUEUE_OLDEST_WAIT, "group" => group.clone()).set(g.oldest_wait_ms as f64 / 1000.0);
            gauge!(QUEUE_UNSERVABLE, "group" => group.clone()).set(f64::from(g.unservable));
            gauge!(LOAD_LEVEL, "scope" => group.clone()).set(level_value(g.level));
            for (status, n) in AgentStatus::ALL.into_iter().zip(g.agents) {
                gauge!(AGENTS, "group" => group.clone(), "status" => status_label(status)).set(f64::from(n));
            }
            gauge!(OCCUPANCY, "group" => group.clone()).set(g.occupancy);
            gauge!(RESERVED_CAPACITY, "group" => group.clone()).set(g.reserve_held());
            gauge!(RECOMMENDED_AGENTS, "group" => group).set(f64::from(g.recommended_agents));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn histogram_upkeep_runs_every_period_with_no_scrape_at_all() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let upkeep = tokio::spawn(every(UPKEEP_EVERY, move || {
            counted.fetch_add(1, Relaxed);
        }));
        tokio::time::sleep(UPKEEP_EVERY / 2).await;
        assert_eq!(calls.load(Relaxed), 0, "not at once");
        tokio::time::sleep(UPKEEP_EVERY * 3).await;
        assert_eq!(calls.load(Relaxed), 3);
        upkeep.abort();
    }

    /// The status line and body of `GET path` on `addr`.
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: router\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn the_liveness_probe_fails_only_while_the_engine_is_stuck() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let (alive, engine_alive) = tokio::sync::watch::channel(true);
        let stop = tokio_util::sync::CancellationToken::new();
        let served = tokio::spawn(serve_scrapes(listener, handle, engine_alive, stop.clone().cancelled_owned()));
        assert!(get(addr, "/livez").await.starts_with("HTTP/1.1 200"));
        alive.send_replace(false);
        let stuck = get(addr, "/livez").await;
        assert!(stuck.starts_with("HTTP/1.1 503") && stuck.contains("has not ticked"), "{stuck}");
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 200"), "scrapes go on");
        alive.send_replace(true);
        assert!(get(addr, "/livez").await.starts_with("HTTP/1.1 200"));
        stop.cancel();
        served.await.unwrap().unwrap();
    }
}
