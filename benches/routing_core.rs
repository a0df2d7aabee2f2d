//! Benchmark of the routing core (`cargo bench --bench routing_core`).
//!
//! The world of the issue: 10,000 agents in 20 groups, and 100,000 waiting
//! inquiries. Every run first prints the heap bytes per waiting inquiry
//! (`memory: ...`, see `memory_report`), then measures:
//!
//! * `steady_state_100k_waiting` — every agent available and busy, 100,000
//!   waiting, load level SURGE. One step: an agent completes its oldest chat
//!   (the freed slot pulls the best waiting inquiry it may take, unless the
//!   reserve holds it for HIGH work), accepts that offer, and new inquiries
//!   arrive until one was not deflected and 100,000 wait again.
//! * `arrivals_with_free_agents` — agents half loaded, nothing waiting: each
//!   arrival is offered at once and accepted; completions keep the load at half.
//!
//! Throughput is in routing decisions: `Offer` effects plus arrivals that
//! queued. Deflections, accepts, completions and ticks are timed but not
//! counted. Building the inquiries (the adapter's work) is not timed.
//! Simulated time advances 5 ms per step (200 arrivals/s) and the router
//! ticks every simulated second inside the timed loop, so timers, overflow,
//! levels and forgetting finished work are part of the cost. After each
//! scenario the rate is also printed per second of this thread's CPU time,
//! which stays meaningful when other processes share the machine.

use criterion::{Criterion, Throughput};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use ticket_router::core::settings::GroupSettings;
use ticket_router::core::testkit::{inquiry, presence};
use ticket_router::core::{
    Actor, AgentStatus, Category, Channel, Command, Effect, EventKind, Id, Inquiry, Millis, Router, RoutingSettings,
};

const AGENTS: usize = 10_000;
const WAITING: i64 = 100_000;
const STEP_MS: Millis = 5;
const TICK_MS: Millis = 1_000;
const ARRIVALS_PER_MIN: f64 = 60_000.0 / STEP_MS as f64;

// ---------------------------------------------------------------- allocator

/// The system allocator, counting bytes and blocks allocated minus freed
/// while `COUNTING` is on (only during the memory report, so the timed runs
/// pay no atomic per allocation). Differences between two readings taken
/// while counting are exact; the readings themselves mean nothing.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

fn count(bytes: usize, blocks: usize, add: bool) {
    if COUNTING.load(Relaxed) {
        if add {
            LIVE_BYTES.fetch_add(bytes, Relaxed);
            LIVE_BLOCKS.fetch_add(blocks, Relaxed);
        } else {
            LIVE_BYTES.fetch_sub(bytes, Relaxed);
            LIVE_BLOCKS.fetch_sub(blocks, Relaxed);
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size(), 1, true);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size(), 1, true);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        count(layout.size(), 1, false);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size, 0, true);
            count(layout.size(), 0, false);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (usize, usize) {
    (LIVE_BYTES.load(Relaxed), LIVE_BLOCKS.load(Relaxed))
}

/// CPU time of this thread (Linux), to report decisions per second of one
/// core even when other processes share the machine.
#[cfg(target_os = "linux")]
fn thread_cpu() -> Option<Duration> {
    use std::ffi::{c_int, c_long};
    #[repr(C)]
    struct Timespec {
        sec: c_long,
        nsec: c_long,
    }
    extern "C" {
        fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
    }
    const CLOCK_THREAD_CPUTIME_ID: c_int = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| Duration::new(ts.sec as u64, ts.nsec as u32))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu() -> Option<Duration> {
    None
}

// ---------------------------------------------------------------- world

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights` with probability proportional to its weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let mut r = self.below(weights.iter().sum());
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        unreachable!("r is below the sum of the weights")
    }
}

/// Primary group of each category and its share of arrivals, in percent.
const PRIMARIES: [(&str, Category, u64); 8] = [
    ("pre_sales", Category::PreSales, 30),
    ("orders", Category::Order, 20),
    ("logistics", Category::Logistics, 15),
    ("refunds", Category::AfterSalesRefund, 10),
    ("exchanges", Category::AfterSalesExchange, 6),
    ("repairs", Category::AfterSalesRepair, 4),
    ("complaints", Category::Complaint, 5),
    ("general", Category::Other, 10),
];
const SKILLS: [&str; 4] = ["invoice", "wholesale", "cross_border", "technical"];
const SUBJECTS: [&str; 6] = [
    "Where is my parcel",
    "Refund not received yet",
    "Exchange for a larger size",
    "Question before buying",
    "Screen cracked, repair please",
    "Coupon did not apply",
];

/// 20 groups: one primary per category (overflowing to two pools), the
/// dedicated `fans`, the escalation `supervisors`, and ten overflow pools
/// without categories. Baselines match the simulated arrival rate. Finished
/// work and sticky agents are kept 10 and 30 minutes (defaults: 24 h) so that
/// memory stays bounded over millions of steps; the rest is the default.
fn settings() -> RoutingSettings {
    let group = |id: String, categories: Vec<Category>, overflow: Vec<String>, share: u64| GroupSettings {
        id,
        categories,
        overflow,
        baseline_per_min: (ARRIVALS_PER_MIN * share as f64 / 100.0).max(1.0),
        ..GroupSettings::default()
    };
    let mut groups: Vec<_> = PRIMARIES
        .iter()
        .enumerate()
        .map(|(i, &(id, c, share))| {
            let mut overflow = vec![format!("pool_{i}"), format!("pool_{}", 9 - i)];
            if c == Category::Complaint {
                overflow.push("supervisors".into());
            }
            group(id.into(), vec![c], overflow, share)
        })
        .collect();
    groups.push(group("fans".into(), vec![], vec!["pre_sales".into()], 10));
    groups.push(group("supervisors".into(), vec![], vec![], 1));
    groups.extend((0..10).map(|i| group(format!("pool_{i}"), vec![], vec![], 1)));
    let mut s = RoutingSettings { groups, ..RoutingSettings::default() };
    s.dedicated.group = "fans".into();
    s.escalation.group = "supervisors".into();
    s.agents.retain_finished = Duration::from_secs(600);
    s.agents.sticky_window = Duration::from_secs(1800);
    s
}

/// Decisions made inside timed batches, and the time they took.
#[derive(Default)]
struct Timed {
    decisions: u64,
    wall: Duration,
    cpu: Option<Duration>,
}

/// Counters over a world's life.
#[derive(Default, Debug)]
struct Stats {
    steps: u64,
    decisions: u64,
    offers_on_arrival: u64,
    offers_from_queue: u64,
    queued: u64,
    deflected: u64,
    completed: u64,
}

/// A router with its agents, and the bench's side of the conversation: it
/// accepts every offer at once and remembers each agent's active chats.
struct World {
    router: Router,
    now: Millis,
    rng: Rng,
    fx: Vec<Effect>,
    actors: Vec<Actor>,
    capacity: usize,
    active: Vec<VecDeque<Id>>,
    active_total: usize,
    waiting: i64,
    next_inquiry: u64,
    next_tick: Option<Millis>,
    offered: Vec<(usize, Id)>,
    arrivals: VecDeque<Command>,
    subject_bytes: usize,
    stats: Stats,
    timed: Timed,
}

impl World {
    /// 10,000 agents with `status`; `ticking` drives the timers every second.
    /// Each has a home group (a primary, in proportion to its traffic, or for
    /// 5 % the fans team), half of them a second group of the 20, proficiency
    /// 1-5, 3-5 chats, Chinese (15 % also English, 3 % Japanese) and each
    /// skill with 10 % chance.
    fn new(status: AgentStatus, ticking: bool) -> World {
        let mut w = World {
            router: Router::new(settings()).expect("valid settings"),
            now: 1_700_000_000_000,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            fx: Vec::with_capacity(256),
            actors: Vec::with_capacity(AGENTS),
            capacity: 0,
            active: (0..AGENTS).map(|_| VecDeque::with_capacity(8)).collect(),
            active_total: 0,
            waiting: 0,
            next_inquiry: 0,
            next_tick: None,
            offered: Vec::with_capacity(64),
            arrivals: VecDeque::new(),
            subject_bytes: 0,
            stats: Stats::default(),
            timed: Timed { cpu: Some(Duration::ZERO), ..Timed::default() },
        };
        let homes: Vec<u64> = PRIMARIES.iter().map(|p| p.2 * 19).chain([5 * 20]).collect();
        let all: Vec<String> = settings().groups.into_iter().map(|g| g.id).collect();
        for a in 0..AGENTS {
            let id = format!("agent-{a:05}");
            let home = w.rng.weighted(&homes);
            let mut groups = vec![(all[home].as_str(), 1 + w.rng.below(5) as u8)];
            if w.rng.chance(50) {
                let other = all[w.rng.below(20) as usize].as_str();
                if other != groups[0].0 {
                    groups.push((other, 1 + w.rng.below(5) as u8));
                }
            }
            let max = 3 + w.rng.below(3) as u32;
            let mut p = presence(&id, &groups, max);
            p.status = status;
            if w.rng.chance(15) {
                p.languages.push("en".into());
            }
            if w.rng.chance(3) {
                p.languages.push("ja".into());
            }
            p.skills = SKILLS.iter().filter(|_| w.rng.chance(10)).map(|s| s.to_string()).collect();
            let actor = Actor::agent(&id);
            w.router.handle(w.now, Command::SetPresence { actor: actor.clone(), presence: p }, &mut w.fx).unwrap();
            w.fx.clear();
            w.actors.push(actor);
            w.capacity += max as usize;
        }
        w.next_tick = ticking.then_some(w.now + TICK_MS);
        w
    }

    /// A new inquiry as an adapter would decode it, every string its own:
    /// categories in the shares of `PRIMARIES`, 12 % VIP (tier 1-5), 10 %
    /// fans, 6 % in English or Japanese, 3 % of the Chinese ones needing one
    /// skill, half already seen by the bot, and a short subject.
    fn new_inquiry(&mut self) -> Inquiry {
        let rng = &mut self.rng;
        let n = self.next_inquiry;
        self.next_inquiry += 1;
        let primary = rng.weighted(&PRIMARIES.map(|p| p.2));
        let mut q = inquiry(&format!("inq-{n:010}"), PRIMARIES[primary].1);
        q.shop_id = format!("shop-{:02}", rng.below(50)).into();
        q.platform = (*rng.pick(&["taobao", "jd", "pinduoduo", "douyin"])).into();
        q.customer.id = format!("cust-{:07}", rng.below(1_000_000));
        q.customer.vip_tier = if rng.chance(88) { 0 } else { 1 + rng.weighted(&[50, 25, 15, 7, 3]) as u8 };
        q.customer.is_fan = rng.chance(10);
        q.customer.lifetime_value_cents = rng.below(5_000_000) as i64;
        q.channel = *rng.pick(&[Channel::Chat, Channel::Chat, Channel::Chat, Channel::Phone, Channel::Email]);
        q.language = (if rng.chance(94) { "zh-CN" } else { *rng.pick(&["en-US", "en-US", "en-US", "ja"]) }).into();
        if rng.chance(3) && &*q.language == "zh-CN" {
            q.required_skills.push(rng.pick(&SKILLS).to_string());
        }
        q.order_value_cents = rng.below(200_000) as i64;
        q.subject = Some(format!("{} #{}", rng.pick(&SUBJECTS), 100_000 + rng.below(900_000)).into());
        q.created_at_ms = self.now;
        q.bot_attempted = rng.chance(50);
        self.subject_bytes += q.subject.as_deref().map_or(0, str::len);
        q
    }

    /// Tops the pre-built arrivals up to `n` (not timed: adapter work).
    fn prepare(&mut self, n: usize) {
        while self.arrivals.len() < n {
            let q = self.new_inquiry();
            self.arrivals.push_back(Command::Arrive(Box::new(q)));
        }
    }

    /// Applies a command, counts its decisions, and accepts every offer.
    /// `from_queue`: offers it makes take waiting inquiries.
    fn apply(&mut self, command: Command, from_queue: bool) {
        self.router.handle(self.now, command, &mut self.fx).expect("command succeeds");
        for e in self.fx.drain(..) {
            match e {
                Effect::Offer(o) => {
                    self.stats.decisions += 1;
                    if from_queue {
                        self.waiting -= 1;
                        self.stats.offers_from_queue += 1;
                    } else {
                        self.stats.offers_on_arrival += 1;
                    }
                    let agent = o.agent[6..].parse().expect("agent-NNNNN");
                    self.offered.push((agent, o.inquiry));
                }
                Effect::Event(ev) if ev.kind == EventKind::Queued => {
                    self.stats.decisions += 1;
                    self.stats.queued += 1;
                    self.waiting += 1;
                }
                Effect::Deflect { .. } => self.stats.deflected += 1,
                _ => {}
            }
        }
        while let Some((agent, inquiry)) = self.offered.pop() {
            let accept = Command::Accept { actor: self.actors[agent].clone(), inquiry: inquiry.clone() };
            self.router.handle(self.now, accept, &mut self.fx).expect("accept succeeds");
            self.fx.clear();
            self.active[agent].push_back(inquiry);
            self.active_total += 1;
        }
    }

    /// One arrival; whether it was deflected.
    fn arrive(&mut self) -> bool {
        let command = match self.arrivals.pop_front() {
            Some(c) => c,
            None => Command::Arrive(Box::new(self.new_inquiry())),
        };
        let deflected = self.stats.deflected;
        self.apply(command, false);
        self.stats.deflected != deflected
    }

    /// A random busy agent completes its oldest chat.
    fn complete_one(&mut self) {
        let mut a = self.rng.below(AGENTS as u64) as usize;
        while self.active[a].is_empty() {
            a = (a + 1) % AGENTS;
        }
        let inquiry = self.active[a].pop_front().expect("busy agent");
        self.active_total -= 1;
        self.stats.completed += 1;
        self.apply(Command::Complete { actor: self.actors[a].clone(), inquiry }, true);
    }

    /// Moves time one step on, ticking every simulated second.
    fn advance(&mut self) {
        self.now += STEP_MS;
        self.stats.steps += 1;
        if let Some(at) = self.next_tick.filter(|&at| self.now >= at) {
            self.next_tick = Some(at + TICK_MS);
            self.apply(Command::Tick, true);
        }
    }

    /// Runs `step` until it made `decisions`; the wall-clock time those took,
    /// with the arrivals prepared outside the clock.
    fn measure(&mut self, decisions: u64, step: fn(&mut World)) -> Duration {
        let start = self.stats.decisions;
        let mut elapsed = Duration::ZERO;
        while self.stats.decisions - start < decisions {
            self.prepare(4096);
            let (before, cpu, clock) = (self.stats.decisions, thread_cpu(), Instant::now());
            for _ in 0..1024 {
                if self.arrivals.len() < 64 || self.stats.decisions - start >= decisions {
                    break;
                }
                step(self);
            }
            let wall = clock.elapsed();
            let cpu = thread_cpu().zip(cpu).map(|(end, start)| end - start);
            elapsed += wall;
            self.timed.decisions += self.stats.decisions - before;
            self.timed.wall += wall;
            self.timed.cpu = self.timed.cpu.zip(cpu).map(|(sum, d)| sum + d);
            assert!(self.stats.decisions > before, "the world stopped deciding");
        }
        elapsed.mul_f64(decisions as f64 / (self.stats.decisions - start) as f64)
    }

    /// Decisions per second over every timed batch, by wall clock and by
    /// this thread's CPU time.
    fn rates(&self, name: &str) {
        let t = &self.timed;
        let rate = |d: Duration| t.decisions as f64 / d.as_secs_f64();
        let cpu = t.cpu.map_or("unknown".to_string(), |cpu| format!("{:.0}", rate(cpu)));
        println!(
            "{name}: {} timed decisions, {:.0} decisions/s by wall clock, {cpu} decisions/s of thread CPU time",
            t.decisions,
            rate(t.wall)
        );
    }

    fn summary(&self, name: &str) {
        let waiting: [u32; 3] = self.router.groups(self.now).iter().fold([0; 3], |mut acc, g| {
            (0..3).for_each(|b| acc[b] += g.waiting[b]);
            acc
        });
        let capacity: u32 = (0..AGENTS).map(|a| self.router.agent(&self.actors[a].id).map_or(0, |v| v.capacity)).sum();
        println!(
            "{name}: level {:?}, waiting {} (HIGH {}, NORMAL {}, LOW {}), busy slots {}/{}, {:?}",
            self.router.router_level(),
            waiting.iter().sum::<u32>(),
            waiting[0],
            waiting[1],
            waiting[2],
            self.active_total,
            capacity,
            self.stats
        );
    }
}

// ---------------------------------------------------------------- scenarios

/// Complete one chat (its slot pulls a waiting inquiry), then arrivals until
/// one was not deflected and 100,000 wait again.
fn steady_step(w: &mut World) {
    w.advance();
    w.complete_one();
    while w.arrive() || w.waiting < WAITING {}
}

/// One arrival, offered to a free agent; completions hold the load at half.
fn free_step(w: &mut World) {
    w.advance();
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
    // grow the queue.
    for _ in 0..60_000 {
        w.advance();
        w.complete_one();
        while w.waiting < WAITING {
            w.arrive();
        }
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

/// Heap growth per inquiry between two points, and its subject text.
struct Growth {
    bytes: f64,
    blocks: f64,
    subject: f64,
}

impl Growth {
    fn since(start: (usize, usize), subject_bytes: usize, inquiries: i64) -> Growth {
        let ((b0, n0), (b1, n1), n) = (start, live(), inquiries as f64);
        let per = |a: usize, b: usize| a.wrapping_sub(b) as isize as f64 / n;
        Growth { bytes: per(b1, b0), blocks: per(n1, n0), subject: subject_bytes as f64 / n }
    }

    fn line(&self, what: &str) -> f64 {
        let net = self.bytes - self.subject;
        println!(
            "memory: {net:.0} bytes per waiting inquiry ({:.0} with the subject text; {:.1} allocations) {what}",
            self.bytes, self.blocks
        );
        net
    }
}

/// 100,000 arrivals, each of which must queue.
fn queue_arrivals(w: &mut World) {
    let w0 = w.waiting;
    for _ in 0..WAITING {
        w.now += STEP_MS;
        w.arrive();
    }
    assert_eq!(w.waiting - w0, WAITING, "every arrival must queue");
}

/// Heap bytes a waiting inquiry costs the router, measured as the growth of
/// live heap bytes over 100,000 arrivals that all queue, less the bytes of
/// their `subject` (the only free text an inquiry carries). Everything else
/// is counted: the record, the inquiry's ids, the timeline, the id index and
/// the queue indexes, and the unused capacity of tables that grew meanwhile.
fn memory_report() {
    COUNTING.store(true, Relaxed);
    // 10,000 agents on break: nothing is offered, so everything queues.
    let mut idle = World::new(AgentStatus::Break, false);
    let (start, subject0) = (live(), idle.subject_bytes);
    queue_arrivals(&mut idle);
    let fresh = Growth::since(start, idle.subject_bytes - subject0, WAITING);
    // Ten minutes on, every one of them has waited past `overflow_after`.
    idle.now += 600_000;
    idle.apply(Command::Tick, true);
    let overflowed = Growth::since(start, idle.subject_bytes - subject0, WAITING);
    drop(idle);
    // Every slot of every agent busy; what queued while filling them stays.
    let mut busy = World::new(AgentStatus::Available, false);
    while busy.active_total < busy.capacity && busy.next_inquiry < 1_000_000 {
        busy.now += STEP_MS;
        busy.arrive();
    }
    let (w0, slots) = (busy.waiting, format!("{}/{}", busy.active_total, busy.capacity));
    let (start, subject0) = (live(), busy.subject_bytes);
    queue_arrivals(&mut busy);
    let full = Growth::since(start, busy.subject_bytes - subject0, WAITING);
    drop(busy);
    COUNTING.store(false, Relaxed);
    let worst = [
        fresh.line("0 -> 100,000 waiting, 10,000 agents on break"),
        overflowed.line("the same once all have waited past overflow_after"),
        full.line(&format!("{w0} -> {} waiting, agents full ({slots} slots busy)", w0 + WAITING)),
    ]
    .into_iter()
    .fold(0.0, f64::max);
    println!(
        "memory: {worst:.0} bytes per waiting inquiry (the largest above; excluding {:.1} bytes of subject text; \
         requested heap bytes, without the allocator's own overhead; target <= 512)",
        fresh.subject
    );
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

fn main() {
    memory_report();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
