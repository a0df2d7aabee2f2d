//! The benchmark's world: settings, agents, inquiries, and the driver that
//! plays adapter and desktops around the router.

use super::{AGENTS, ARRIVALS_PER_MIN, STEP_MS, TICK_MS};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use ticket_router::core::settings::GroupSettings;
use ticket_router::core::testkit::{inquiry, presence};
use ticket_router::core::{
    Actor, AgentStatus, Category, Channel, Command, Effect, EventKind, Id, Inquiry, Millis, Router, RoutingSettings,
};

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

/// Simulated time when a world starts.
pub(crate) const START_MS: Millis = 1_700_000_000_000;

/// How long finished work is kept (default: 24 h).
pub(crate) const RETAIN_FINISHED_MS: Millis = 600_000;
/// How long a customer's last agent is remembered (default: 24 h).
pub(crate) const STICKY_WINDOW_MS: Millis = 1_800_000;

/// 20 groups: one primary per category (overflowing to two pools), the
/// dedicated `fans`, the escalation `supervisors`, and ten overflow pools
/// without categories. Baselines match the simulated arrival rate. Finished
/// work and sticky agents are kept 10 and 30 minutes (defaults: 24 h) so that
/// memory stays bounded over millions of steps, agents tire after 8 hours
/// (default: 45 minutes); the rest is the default.
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
    s.agents.retain_finished = Duration::from_millis(RETAIN_FINISHED_MS);
    s.agents.sticky_window = Duration::from_millis(STICKY_WINDOW_MS);
    // No agent takes a break in the bench; without this, all of them would
    // tire at once 45 simulated minutes in and the free-agents world would
    // turn into a surge midway.
    s.fatigue.max_continuous = Duration::from_secs(8 * 3600);
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
pub(crate) struct World {
    router: Router,
    pub(crate) now: Millis,
    rng: Rng,
    fx: Vec<Effect>,
    actors: Vec<Actor>,
    pub(crate) capacity: usize,
    active: Vec<VecDeque<Id>>,
    pub(crate) active_total: usize,
    pub(crate) waiting: i64,
    pub(crate) next_inquiry: u64,
    next_tick: Option<Millis>,
    offered: Vec<(usize, Id)>,
    arrivals: VecDeque<Command>,
    /// Completions picked ahead (not timed: the desktops' choice), in the
    /// order they are applied; still active until then.
    completions: VecDeque<Command>,
    /// The first of `completions` was shown to the router.
    announced: bool,
    /// Active chats on the agents' lists, not yet picked.
    pickable: usize,
    pub(crate) subject_bytes: usize,
    stats: Stats,
    timed: Timed,
}

impl World {
    /// 10,000 agents with `status`; `ticking` drives the timers every second.
    /// Each has a home group (a primary, in proportion to its traffic, or for
    /// 5 % the fans team), half of them a second group of the 20, proficiency
    /// 1-5, 3-5 chats, Chinese (15 % also English, 3 % Japanese) and each
    /// skill with 10 % chance.
    pub(crate) fn new(status: AgentStatus, ticking: bool) -> World {
        let mut w = World {
            router: Router::new(settings()).expect("valid settings"),
            now: START_MS,
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
            completions: VecDeque::new(),
            announced: false,
            pickable: 0,
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
        q.customer.id = format!("cust-{:07}", rng.below(1_000_000)).into();
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

    /// Tops the pre-built arrivals up to `n`, and the picked completions
    /// up to `n` as far as chats are active (not timed: adapter and desktop
    /// work).
    fn prepare(&mut self, n: usize) {
        while self.arrivals.len() < n {
            let q = self.new_inquiry();
            self.arrivals.push_back(Command::Arrive(Box::new(q)));
        }
        while self.completions.len() < n && self.pickable > 0 {
            let command = self.pick_completion();
            self.completions.push_back(command);
        }
    }

    /// Applies a command, counts its decisions, and accepts every offer.
    /// `from_queue`: offers it makes take waiting inquiries.
    pub(crate) fn apply(&mut self, command: Command, from_queue: bool) {
        self.router.handle(self.now, command, &mut self.fx).expect("command succeeds");
        // Read in place and cleared after: moving each effect out (over 200
        // bytes) would time the driver's copying as the router's work.
        for e in &self.fx {
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
                    self.offered.push((agent, o.inquiry.clone()));
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
        self.fx.clear();
        while let Some((agent, inquiry)) = self.offered.pop() {
            let accept = Command::Accept { actor: self.actors[agent].clone(), inquiry: inquiry.clone() };
            self.router.handle(self.now, accept, &mut self.fx).expect("accept succeeds");
            self.fx.clear();
            self.active[agent].push_back(inquiry);
            self.active_total += 1;
            self.pickable += 1;
        }
    }

    /// One arrival; whether it was deflected. The next one is shown to the
    /// router meanwhile, as the engine shows it the job after the one in hand.
    pub(crate) fn arrive(&mut self) -> bool {
        let command = match self.arrivals.pop_front() {
            Some(c) => c,
            None => Command::Arrive(Box::new(self.new_inquiry())),
        };
        if let Some(next) = self.arrivals.front() {
            self.router.prepare(next);
        }
        let deflected = self.stats.deflected;
        self.apply(command, false);
        self.stats.deflected != deflected
    }

    /// A random busy agent completes its oldest chat: the next picked
    /// one (the one announced by `announce_completion`, if any).
    pub(crate) fn complete_one(&mut self) {
        self.announced = false;
        let command = match self.completions.pop_front() {
            Some(command) => command,
            None => self.pick_completion(),
        };
        self.active_total -= 1;
        self.stats.completed += 1;
        self.apply(command, true);
    }

    /// Shows the next completion to the router ahead of time, as the
    /// service's engine shows it the next command in its queue, unless it
    /// was shown already. It still counts as active until `complete_one`
    /// applies it.
    pub(crate) fn announce_completion(&mut self) {
        if self.announced {
            return;
        }
        if self.completions.is_empty() && self.pickable > 0 {
            let command = self.pick_completion();
            self.completions.push_back(command);
        }
        if let Some(command) = self.completions.front() {
            self.router.prepare(command);
            self.announced = true;
        }
    }

    /// A random busy agent's oldest chat, taken off its list.
    fn pick_completion(&mut self) -> Command {
        self.pickable -= 1;
        let mut a = self.rng.below(AGENTS as u64) as usize;
        while self.active[a].is_empty() {
            a = (a + 1) % AGENTS;
        }
        let inquiry = self.active[a].pop_front().expect("busy agent");
        Command::Complete { actor: self.actors[a].clone(), inquiry }
    }

    /// Moves time one step on, ticking every simulated second.
    pub(crate) fn advance(&mut self) {
        self.now += STEP_MS;
        self.stats.steps += 1;
        if let Some(at) = self.next_tick.filter(|&at| self.now >= at) {
            self.next_tick = Some(at + TICK_MS);
            self.apply(Command::Tick, true);
        }
    }

    /// Runs `step` until it made `decisions`; the wall-clock time those took,
    /// with the arrivals prepared outside the clock.
    pub(crate) fn measure(&mut self, decisions: u64, step: fn(&mut World)) -> Duration {
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
    pub(crate) fn rates(&self, name: &str) {
        let t = &self.timed;
        let rate = |d: Duration| t.decisions as f64 / d.as_secs_f64();
        let cpu = t.cpu.map_or("unknown".to_string(), |cpu| format!("{:.0}", rate(cpu)));
        println!(
            "{name}: {} timed decisions, {:.0} decisions/s by wall clock, {cpu} decisions/s of thread CPU time",
            t.decisions,
            rate(t.wall)
        );
    }

    pub(crate) fn summary(&self, name: &str) {
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
