//! Benchmark of the routing core (`cargo bench --bench routing_core`).
//!
//! The world of the issue: 10,000 agents in 20 groups, and 100,000 waiting
//! inquiries. Every run first prints the heap bytes per waiting inquiry
//! (`memory: ...`, see `memory_report`), then measures:
//!
//! * `steady_state_100k_waiting` — every agent available and busy, 100,000
//!   waiting, load level SURGE. One step: an agent completes its oldest chat
//!   (the freed slot pulls the best waiting inquiry it may take, unless the
//!   reserve holds it for HIGH work), accepts that offer, the next
//!   completion is shown to the router (`Router::prepare`, as the service's
//!   engine shows it the next job in its queue), and new inquiries arrive
//!   until one was not deflected and 100,000 wait again.
//! * `arrivals_with_free_agents` — agents half loaded, nothing waiting: each
//!   arrival is offered at once and accepted; completions keep the load at
//!   half, the next one shown to the router before the arrival.
//!
//! Throughput is in routing decisions: `Offer` effects plus arrivals that
//! queued. Deflections, accepts, completions and ticks are timed but not
//! counted. Building the inquiries (the adapter's work) and picking which
//! chats complete (the desktops' choice) are not timed; showing the next
//! completion to the router (`Router::prepare`) is.
//! Simulated time advances 5 ms per step (200 arrivals/s) and the router
//! ticks every simulated second inside the timed loop, so timers, overflow,
//! levels and forgetting finished work are part of the cost. After each
//! scenario the rate is also printed per second of this thread's CPU time,
//! which stays meaningful when other processes share the machine.
//!
//! To compare two builds, run each a few times alternately with
//! `ROUTING_CORE_FIXED=N` (e.g. 6000000): the steady state only (or, with
//! `ROUTING_CORE_SCENARIO=arrivals`, arrivals with free agents), exactly N
//! decisions, no criterion analysis, so every run does the same work.
//!
//! `routing_core/world.rs` builds and drives the world; `routing_core/memory.rs`
//! holds the counting allocator and the memory report.

#[path = "routing_core/memory.rs"]
mod memory;
#[path = "routing_core/world.rs"]
mod world;

use criterion::{Criterion, Throughput};
use ticket_router::core::{AgentStatus, Millis};
use world::{World, RETAIN_FINISHED_MS, START_MS, STICKY_WINDOW_MS};

const AGENTS: usize = 10_000;
const WAITING: i64 = 100_000;
const STEP_MS: Millis = 5;
const TICK_MS: Millis = 1_000;
const ARRIVALS_PER_MIN: f64 = 60_000.0 / STEP_MS as f64;

/// Complete one chat (its slot pulls a waiting inquiry), then arrivals until
/// one was not deflected and 100,000 wait again.
fn steady_step(w: &mut World) {
    w.advance();
    w.complete_one();
    // The next completion is known before the arrivals, as the engine knows
    // the next command in its mailbox: the router fetches its records meanwhile.
    w.announce_completion();
    while w.arrive() || w.waiting < WAITING {}
}

/// One arrival, offered to a free agent; completions hold the load at half.
fn free_step(w: &mut World) {
    w.advance();
    // As in the steady state, the router sees the next completion while the
    // arrival is handled.
    w.announce_completion();
    w.arrive();
    while w.active_total > w.capacity / 2 {
        w.complete_one();
    }
}

/// All agents available and busy, 100,000 waiting, timers running.
fn steady_world() -> World {
    let mut w = World::new(AgentStatus::Available, true);
    while w.waiting < WAITING {
        w.advance();
        w.arrive();
    }
    // With every slot taken, the SURGE reserve holds freed slots back for
    // HIGH work until about 30 % are free. Let that settle first, arriving
    // only to keep 100,000 waiting, so the measured steps neither drain nor
    // grow the queue. Settle also until finished work is forgotten as fast
    // as it finishes and customers' last agents as fast as they are
    // remembered: from then on no table grows, and even a short measurement
    // (instruction counts) sees the steady state.
    let started = w.now;
    let mut steps = 0;
    while steps < 60_000 || w.now < started + RETAIN_FINISHED_MS || w.now < START_MS + STICKY_WINDOW_MS {
        w.advance();
        w.complete_one();
        while w.waiting < WAITING {
            w.arrive();
        }
        steps += 1;
    }
    w.summary("steady state world built");
    w
}

fn free_world() -> World {
    let mut w = World::new(AgentStatus::Available, true);
    while w.active_total < w.capacity / 2 {
        free_step(&mut w);
    }
    w.summary("free agents world built");
    w
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("routing_core");
    group.throughput(Throughput::Elements(1));
    // Built on first use, so a filter that skips a scenario skips its setup.
    let mut steady = None;
    group.bench_function("steady_state_100k_waiting", |b| {
        let w = steady.get_or_insert_with(steady_world);
        b.iter_custom(|n| w.measure(n, steady_step))
    });
    if let Some(w) = steady.take() {
        w.summary("steady state world after");
        w.rates("steady_state_100k_waiting");
    }
    let mut free = None;
    group.bench_function("arrivals_with_free_agents", |b| {
        let w = free.get_or_insert_with(free_world);
        b.iter_custom(|n| w.measure(n, free_step))
    });
    if let Some(w) = free.take() {
        w.summary("free agents world after");
        w.rates("arrivals_with_free_agents");
    }
    group.finish();
}

/// `ROUTING_CORE_FIXED=N`: one scenario only, exactly N decisions and no
/// criterion analysis. Every run then does the same work, which makes
/// comparing two builds on a noisy machine a matter of a few runs each.
/// The steady state unless `ROUTING_CORE_SCENARIO=arrivals` (with free agents).
fn fixed_work(decisions: u64) {
    let arrivals = std::env::var("ROUTING_CORE_SCENARIO").is_ok_and(|s| s == "arrivals");
    let (mut w, step, name): (_, fn(&mut World), _) = if arrivals {
        (free_world(), free_step, "arrivals_with_free_agents")
    } else {
        (steady_world(), steady_step, "steady_state_100k_waiting")
    };
    w.measure(decisions, step);
    w.summary(&format!("{name} world after"));
    w.rates(&format!("{name} (fixed work)"));
}

fn main() {
    // The allocator as the binary runs it.
    ticket_router::allocator::tune();
    if let Some(n) = std::env::var("ROUTING_CORE_FIXED").ok().and_then(|n| n.parse().ok()) {
        return fixed_work(n);
    }
    memory::report();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
