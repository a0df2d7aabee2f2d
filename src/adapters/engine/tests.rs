//! The engine with a journal that records when the test says so.

use super::*;
use crate::core::testkit::{inquiry, presence};
use crate::core::{Actor, Category, InquiryState, RoutingSettings};

static NOW: AtomicU64 = AtomicU64::new(1_000_000);

fn clock() -> Millis {
    NOW.load(Ordering::SeqCst)
}

fn advance_and_tick(engine: &mut Engine, ms: Millis) {
    NOW.fetch_add(ms, Ordering::SeqCst);
    engine.tick();
}

/// Every offer deadline sinks were told of, in the order released.
struct Deadlines(Arc<std::sync::Mutex<Vec<Millis>>>);

impl EffectSink for Deadlines {
    fn prepare(&mut self, _now: Millis, effects: &[Effect], _router: &Router) -> Option<Release> {
        let deadlines: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Offer(o) => Some(o.expires_at),
                Effect::OfferRenewed { expires_at, .. } => Some(*expires_at),
                _ => None,
            })
            .collect();
        let delivered = self.0.clone();
        Some(Box::new(move || delivered.lock().unwrap().extend(deadlines)))
    }
}

#[test]
fn offers_made_while_restoring_pause_their_timers_until_recorded() {
    // A clock of its own: the other test moves `NOW` meanwhile.
    static LATER: AtomicU64 = AtomicU64::new(5_000_000);
    fn clock() -> Millis {
        LATER.load(Ordering::SeqCst)
    }
    let tick = |engine: &mut Engine| {
        LATER.fetch_add(100, Ordering::SeqCst);
        engine.tick();
    };
    let mut router = Router::new(RoutingSettings::default()).unwrap();
    router.track_changes();
    let mut catch_up = Vec::new();
    let now = clock();
    let presence = presence("ann", &[("orders", 3)], 3);
    router.handle(now, Command::SetPresence { actor: Actor::agent("ann"), presence }, &mut catch_up).unwrap();
    router.handle(now, Command::Arrive(Box::new(inquiry("q1", Category::Order))), &mut catch_up).unwrap();
    let changes = router.take_changes();
    let (journal, mut batches) = mpsc::unbounded_channel();
    let (engine, _handle) = Engine::new(router, vec![]);
    let mut engine = engine.with_journal(journal);
    engine.clock = clock;
    engine.record_restored(changes, vec![Box::new(|| {})]);
    for _ in 0..600 {
        tick(&mut engine);
    }
    assert_eq!(engine.router.inquiry_state("q1"), Some(InquiryState::Offered), "not shown, so not timed out");
    while let Ok(batch) = batches.try_recv() {
        batch.complete();
    }
    for _ in 0..400 {
        tick(&mut engine);
        while let Ok(batch) = batches.try_recv() {
            batch.complete();
        }
    }
    assert_eq!(engine.router.inquiry_state("q1"), Some(InquiryState::Waiting), "times out once recorded");
}

#[test]
fn offer_timers_pause_while_the_journal_cannot_record() {
    let mut router = Router::new(RoutingSettings::default()).unwrap();
    router.track_changes();
    let (journal, mut batches) = mpsc::unbounded_channel();
    let delivered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (engine, _handle) = Engine::new(router, vec![Box::new(Deadlines(delivered.clone()))]);
    let mut engine = engine.with_journal(journal);
    engine.clock = clock;
    let presence = presence("ann", &[("orders", 3)], 3);
    engine.run_job(Job::Command(Command::SetPresence { actor: Actor::agent("ann"), presence }, None));
    engine.run_job(Job::Command(Command::Arrive(Box::new(inquiry("q1", Category::Order))), None));
    let state = |e: &Engine| e.router.inquiry_state("q1");
    assert_eq!(state(&engine), Some(InquiryState::Offered));

    // NATS is away: nothing is recorded for 60 s, twice the accept timeout.
    for _ in 0..600 {
        advance_and_tick(&mut engine, 100);
    }
    assert_eq!(state(&engine), Some(InquiryState::Offered), "no timeout while nothing could be delivered");
    assert_eq!(engine.router.inquiry(clock(), "q1").unwrap().attempts, 1, "still the first offer");

    // Recorded again: the offer gets the lost time back, so it times out
    // 30 s after it could first have been delivered, not at once.
    while let Ok(batch) = batches.try_recv() {
        batch.complete();
    }
    advance_and_tick(&mut engine, 100);
    assert_eq!(state(&engine), Some(InquiryState::Offered));
    while let Ok(batch) = batches.try_recv() {
        batch.complete();
    }
    let resumed = clock();
    let offered_at = resumed - 60_100;
    assert_eq!(
        *delivered.lock().unwrap(),
        [offered_at + 30_000, resumed + 30_000],
        "the offer made during the outage, then its deadline as it now stands"
    );
    for _ in 0..400 {
        advance_and_tick(&mut engine, 100);
        while let Ok(batch) = batches.try_recv() {
            batch.complete();
        }
    }
    assert_eq!(state(&engine), Some(InquiryState::Waiting), "the accept timeout runs again once recorded");
    assert_eq!(engine.router.agent("ann").unwrap().status, crate::core::AgentStatus::Available);
}

/// Counts the engine's ticks (each refreshes every sink).
struct Ticks(Arc<std::sync::atomic::AtomicUsize>);

impl EffectSink for Ticks {
    fn prepare(&mut self, _now: Millis, _effects: &[Effect], _router: &Router) -> Option<Release> {
        None
    }

    fn refresh(&mut self, _now: Millis, _router: &Router) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_go_on_while_commands_never_stop_coming() {
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let router = Router::new(RoutingSettings::default()).unwrap();
    let (engine, handle) = Engine::new(router, vec![Box::new(Ticks(ticks.clone()))]);
    let stop = CancellationToken::new();
    let running = tokio::spawn(engine.run(stop.clone()));
    // As at saturation: every time the engine lets the other tasks run, more
    // commands wait than it takes before it yields again, so its queue never
    // empties. Timers, levels and sampled metrics must not stop meanwhile.
    let cancel = || Command::Cancel { inquiry: "nobody".into(), shop: None };
    for _ in 0..20 {
        while handle.try_submit(cancel()) {}
        tokio::time::advance(TICK_EVERY).await;
    }
    let during = ticks.load(Ordering::SeqCst);
    stop.cancel();
    running.await.unwrap();
    assert!(during >= 10, "{during} ticks in 20 tick periods under a queue that never emptied");
}

#[tokio::test(start_paused = true)]
async fn an_accept_sent_before_its_deadline_wins_over_a_tick_that_runs_first() {
    static CLOCK: AtomicU64 = AtomicU64::new(9_000_000);
    fn clock() -> Millis {
        CLOCK.load(Ordering::SeqCst)
    }
    async fn advance(ms: Millis) {
        CLOCK.fetch_add(ms, Ordering::SeqCst);
        tokio::time::advance(Duration::from_millis(ms)).await;
    }
    let mut router = Router::new(RoutingSettings::default()).unwrap();
    let mut fx = Vec::new();
    let presence = presence("ann", &[("orders", 3)], 1);
    router.handle(clock(), Command::SetPresence { actor: Actor::agent("ann"), presence }, &mut fx).unwrap();
    router.handle(clock(), Command::Arrive(Box::new(inquiry("q1", Category::Order))), &mut fx).unwrap();
    assert_eq!(router.inquiry_state("q1"), Some(InquiryState::Offered));
    let (mut engine, handle) = Engine::new(router, vec![]);
    engine.clock = clock;
    let stop = CancellationToken::new();
    let running = tokio::spawn(engine.run(stop.clone()));
    advance(29_000).await;
    // 29 s into the 30 s accept timeout: the desktop accepts, behind a full
    // queue of other commands, which the engine takes up only after the
    // deadline, and after a tick that is due by then.
    while handle.try_submit(Command::Cancel { inquiry: "nobody".into(), shop: None }) {
        if handle.jobs.capacity() == 1 {
            assert!(handle.try_submit(Command::Accept { actor: Actor::agent("ann"), inquiry: "q1".into() }));
        }
    }
    advance(2_000).await;
    let state = handle.query(|router, _| router.inquiry_state("q1")).await.unwrap();
    assert_eq!(state, Some(InquiryState::Active), "accepted in time");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_commands_run_in_order_while_each_next_one_is_prepared() {
    let router = Router::new(RoutingSettings::default()).unwrap();
    let (engine, handle) = Engine::new(router, vec![]);
    // All queued before the engine takes the first, so each command is
    // shown to the router while the one before it runs.
    let ann = || Actor::agent("ann");
    let commands = [
        Command::SetPresence { actor: ann(), presence: presence("ann", &[("orders", 3)], 1) },
        Command::Arrive(Box::new(inquiry("q1", Category::Order))),
        Command::Accept { actor: ann(), inquiry: "q1".into() },
        Command::Complete { actor: ann(), inquiry: "q1".into() },
        Command::Arrive(Box::new(inquiry("q2", Category::Order))),
        Command::Accept { actor: ann(), inquiry: "q2".into() },
    ];
    for command in commands {
        assert!(handle.try_submit(command));
    }
    let stop = CancellationToken::new();
    let running = tokio::spawn(engine.run(stop.clone()));
    let states = handle.query(|router, _| (router.inquiry_state("q1"), router.inquiry_state("q2"))).await.unwrap();
    assert_eq!(states, (Some(InquiryState::Completed), Some(InquiryState::Active)));
    stop.cancel();
    running.await.unwrap();
}
