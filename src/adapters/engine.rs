//! The one task that owns the routing core.
//!
//! Every adapter talks to the core through an [`EngineHandle`]: commands and
//! read-only queries travel over a channel, so the core stays single-threaded
//! and synchronous. After each command the engine lets its [`EffectSink`]s
//! (NATS publisher, desktop streams, metrics) prepare what the effects need,
//! and a tick loop drives the core's timers — no per-inquiry timer tasks.
//!
//! With a journal, a command's recorded changes go to it first: what the
//! sinks prepared is released, and the caller answered, only once the
//! journal has the changes durably. Nobody hears of a decision that a crash
//! could still undo. While the journal cannot record (NATS away), the core's
//! timers are not ticked — nothing decided then could be announced — and once
//! it records again, open offers get the lost time back
//! (`Command::ExtendOffers`), so no agent times out on an offer never shown.

use crate::core::snapshot::Change;
use crate::core::{Command, CoreError, Effect, Millis, Router};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How often the engine ticks the core's timers.
pub const TICK_EVERY: Duration = Duration::from_millis(100);

/// The front job taken out by a tick, else the next from the queue.
async fn next_job(front: &mut Option<Queued>, jobs: &mut mpsc::Receiver<Queued>) -> Option<Queued> {
    match front.take() {
        Some(queued) => Some(queued),
        None => jobs.recv().await,
    }
}

/// A batch not recorded after this long means the journal cannot record.
const STALLED_AFTER: Millis = 2_000;

/// Wall-clock milliseconds since the epoch; the only clock read of the service.
pub fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as Millis)
}

/// What a sink does once the decision behind it is recorded.
pub type Release = Box<dyn FnOnce() + Send>;

/// The answer to a command, sent once its changes are recorded.
pub type Reply = oneshot::Sender<Result<(), CoreError>>;

/// Receives the effects of every command, in order, with read access to the
/// router as it is right after the command (to look up inquiry details).
pub trait EffectSink: Send {
    /// Builds what to send for `effects`; the returned action sends it, and
    /// runs after the changes of the same command are recorded.
    fn prepare(&mut self, now: Millis, effects: &[Effect], router: &Router) -> Option<Release>;

    /// Called after every tick, for state that is sampled rather than evented.
    fn refresh(&mut self, _now: Millis, _router: &Router) {}
}

/// One command's (or tick's) outcome on its way through the journal.
pub struct Batch {
    pub changes: Vec<Change>,
    pub releases: Vec<Release>,
    pub reply: Option<(Reply, Result<(), CoreError>)>,
    /// Every record the router holds, asked for after the server lost the
    /// store (the loss it answers, see [`EngineHandle::snapshot`]).
    pub snapshot: Option<u64>,
}

impl Batch {
    /// Sends what was prepared and answers the caller.
    pub fn complete(self) {
        for release in self.releases {
            release();
        }
        if let Some((reply, result)) = self.reply {
            let _ = reply.send(result);
        }
    }
}

/// Why the engine could not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("the router is shutting down; retry against a running instance")]
    Stopped,
}

type Query = Box<dyn FnOnce(&Router, Millis) + Send>;

enum Job {
    Command(Command, Option<Reply>),
    Query(Query),
    Snapshot(u64),
}

/// A job and when it was sent (see `Engine::tick` for why).
struct Queued {
    job: Job,
    at: tokio::time::Instant,
}

impl From<Job> for Queued {
    fn from(job: Job) -> Queued {
        Queued { job, at: tokio::time::Instant::now() }
    }
}

/// A command sent to the engine whose answer has not arrived yet.
pub struct Pending(oneshot::Receiver<Result<(), CoreError>>);

impl Pending {
    /// Waits for the answer (after the decision is recorded).
    pub async fn outcome(self) -> Result<(), EngineError> {
        Ok(self.0.await.map_err(|_| EngineError::Stopped)??)
    }
}

/// Cheap to clone; talks to the engine task.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Queued>,
}

impl EngineHandle {
    /// Applies a command and waits for the core's answer.
    pub async fn execute(&self, command: Command) -> Result<(), EngineError> {
        self.start(command).await?.outcome().await
    }

    /// Queues a command in order and returns its answer to wait for later,
    /// so a caller can keep many commands in flight.
    pub async fn start(&self, command: Command) -> Result<Pending, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Command(command, Some(reply)).into()).await.map_err(|_| EngineError::Stopped)?;
        Ok(Pending(answer))
    }

    /// Applies a command without waiting for its outcome.
    pub async fn submit(&self, command: Command) -> Result<(), EngineError> {
        self.jobs.send(Job::Command(command, None).into()).await.map_err(|_| EngineError::Stopped)
    }

    /// Applies a command from synchronous code (e.g. a `Drop`); false when full or stopped.
    pub fn try_submit(&self, command: Command) -> bool {
        self.jobs.try_send(Job::Command(command, None).into()).is_ok()
    }

    /// Asks for a batch of every record the router holds, sent to the
    /// journal in order with the commands' batches (so it follows every
    /// decision taken before it, and precedes every one after), marked
    /// with `loss`.
    pub async fn snapshot(&self, loss: u64) -> Result<(), EngineError> {
        self.jobs.send(Job::Snapshot(loss).into()).await.map_err(|_| EngineError::Stopped)
    }

    /// Runs `read` against the router at the engine's current time.
    pub async fn query<R, F>(&self, read: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&Router, Millis) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Query = Box::new(move |router, now| {
            let _ = reply.send(read(router, now));
        });
        self.jobs.send(Job::Query(job).into()).await.map_err(|_| EngineError::Stopped)?;
        answer.await.map_err(|_| EngineError::Stopped)
    }
}

/// The engine task's state.
pub struct Engine {
    router: Router,
    sinks: Vec<Box<dyn EffectSink>>,
    jobs: mpsc::Receiver<Queued>,
    /// The oldest queued job, taken out by a tick to see when it was sent;
    /// the next to run.
    front: Option<Queued>,
    effects: Vec<Effect>,
    clock: fn() -> Millis,
    on_decision: Option<Box<dyn FnMut(Duration) + Send>>,
    journal: Option<mpsc::UnboundedSender<Batch>>,
    /// Batches sent to the journal and not yet recorded: sequence, time sent.
    unrecorded: VecDeque<(u64, Millis)>,
    sent: u64,
    /// Batches recorded so far; the journal counts them as it completes them.
    recorded: Arc<AtomicU64>,
    /// When the journal stopped keeping up, while the timers are paused.
    paused_since: Option<Millis>,
    /// Whether decisions are being recorded (false while paused), for health.
    recording: tokio::sync::watch::Sender<bool>,
    /// Counts ticks, for the watchdog (see `adapters::watchdog`).
    beats: crate::adapters::watchdog::Beats,
}

impl Engine {
    /// An engine around `router` and the handle to reach it.
    pub fn new(router: Router, sinks: Vec<Box<dyn EffectSink>>) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::channel(4096);
        let engine = Engine {
            router,
            sinks,
            jobs: rx,
            front: None,
            effects: Vec::with_capacity(64),
            clock: now_ms,
            on_decision: None,
            journal: None,
            unrecorded: VecDeque::new(),
            sent: 0,
            recorded: Arc::new(AtomicU64::new(0)),
            paused_since: None,
            recording: tokio::sync::watch::Sender::new(true),
            beats: Default::default(),
        };
        (engine, EngineHandle { jobs: tx })
    }

    /// Records every command's changes through `journal` before releasing its
    /// effects and answering (see the module docs). The router must track
    /// changes (`Router::track_changes`).
    pub fn with_journal(mut self, journal: mpsc::UnboundedSender<Batch>) -> Engine {
        self.journal = Some(journal);
        self
    }

    /// Follows whether decisions are being recorded: false from when the
    /// timers pause until records go through again (a broker that hangs
    /// rather than drops the connection shows only here).
    pub fn recording(&self) -> tokio::sync::watch::Receiver<bool> {
        self.recording.subscribe()
    }

    /// The tick count: it moves at least every [`TICK_EVERY`] plus one
    /// command's time while the engine runs (a due tick goes first).
    pub fn beats(&self) -> crate::adapters::watchdog::Beats {
        self.beats.clone()
    }

    /// Called with the duration of every inquiry arrival the core decided
    /// (for the routing-duration histogram).
    pub fn on_decision(mut self, observe: impl FnMut(Duration) + Send + 'static) -> Engine {
        self.on_decision = Some(Box::new(observe));
        self
    }

    /// Runs until `shutdown` is cancelled and every handle's queued job is
    /// done, or every handle is dropped.
    pub async fn run(mut self, shutdown: CancellationToken) -> Router {
        let mut ticks = tokio::time::interval(TICK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A due tick goes first: jobs first would starve the timers,
            // the levels and the sampled metrics for as long as the queue
            // never empties, which is exactly under a surge.
            tokio::select! {
                biased;
                _ = ticks.tick() => {
                    self.tick();
                    // A full period for the jobs, however long the tick took.
                    ticks.reset();
                }
                job = next_job(&mut self.front, &mut self.jobs) => match job {
                    Some(queued) => {
                        self.prepare_next();
                        self.run_job(queued.job)
                    }
                    None => break,
                },
                _ = shutdown.cancelled() => {
                    self.jobs.close();
                    while let Some(queued) = next_job(&mut self.front, &mut self.jobs).await {
                        self.run_job(queued.job);
                    }
                    break;
                }
            }
        }
        self.router
    }

    /// Shows the router the job after the one in hand, if one is queued:
    /// it fetches the records that job names while this one runs (see
    /// `Router::prepare`). Under load the queue is never empty.
    fn prepare_next(&mut self) {
        if self.front.is_none() {
            self.front = self.jobs.try_recv().ok();
        }
        if let Some(Queued { job: Job::Command(command, _), .. }) = &self.front {
            self.router.prepare(command);
        }
    }

    fn run_job(&mut self, job: Job) {
        let now = (self.clock)();
        match job {
            Job::Query(read) => read(&self.router, now),
            Job::Snapshot(loss) => {
                let changes = self.router.all_changes();
                self.record(now, Batch { changes, releases: Vec::new(), reply: None, snapshot: Some(loss) });
            }
            Job::Command(command, reply) => {
                let timed = matches!(command, Command::Arrive(_) | Command::ArriveReceived { .. })
                    && self.on_decision.is_some();
                let started = timed.then(std::time::Instant::now);
                let result = self.router.handle(now, command, &mut self.effects);
                if let (Some(started), Some(observe)) = (started, self.on_decision.as_mut()) {
                    observe(started.elapsed());
                }
                self.flush(now, reply.map(|r| (r, result)));
            }
        }
    }

    fn tick(&mut self) {
        self.beats.fetch_add(1, Ordering::Release);
        let now = (self.clock)();
        let recorded = self.recorded.load(Ordering::Acquire);
        while self.unrecorded.front().is_some_and(|&(seq, _)| seq <= recorded) {
            self.unrecorded.pop_front();
        }
        if let Some(&(_, since)) =
            self.unrecorded.front().filter(|(_, sent)| now.saturating_sub(*sent) >= STALLED_AFTER)
        {
            if self.paused_since.is_none() {
                tracing::warn!("decisions are not being recorded; timers paused until they are");
                self.paused_since = Some(since);
                self.recording.send_replace(false);
            }
        } else if let Some(since) = self.paused_since.take() {
            tracing::info!(paused_ms = now.saturating_sub(since), "decisions recorded again; timers resume");
            self.recording.send_replace(true);
            let by = now.saturating_sub(since);
            let _ = self.router.handle(now, Command::ExtendOffers { by }, &mut self.effects);
            self.flush(now, None);
        }
        if self.paused_since.is_none() {
            // A due tick runs before the jobs already queued, but an Accept
            // sent before its offer's deadline must not lose to it: offers
            // time out only up to when the oldest queued job was sent, as
            // everything sent before that has been handled (but for a sender
            // that was still waiting for room in a full queue).
            if self.front.is_none() {
                self.front = self.jobs.try_recv().ok();
            }
            let tick = match &self.front {
                Some(q) => Command::TickQueued { since: now.saturating_sub(q.at.elapsed().as_millis() as Millis) },
                None => Command::Tick,
            };
            let _ = self.router.handle(now, tick, &mut self.effects);
            self.flush(now, None);
        }
        for sink in &mut self.sinks {
            sink.refresh(now, &self.router);
        }
    }

    /// Prepares the effects and passes them, with the changes and the answer,
    /// to the journal — or completes them at once without one.
    fn flush(&mut self, now: Millis, reply: Option<(Reply, Result<(), CoreError>)>) {
        let mut releases = Vec::new();
        if !self.effects.is_empty() {
            for sink in &mut self.sinks {
                releases.extend(sink.prepare(now, &self.effects, &self.router));
            }
            self.effects.clear();
        }
        let changes = if self.journal.is_some() { self.router.take_changes() } else { Vec::new() };
        self.record(now, Batch { changes, releases, reply, snapshot: None });
    }

    /// Passes what a restore decided before the engine started (offers made
    /// while catching up, deflections resent) to the journal like any other
    /// command's outcome, so that its offers' timers too pause while it
    /// cannot be recorded.
    pub fn record_restored(&mut self, changes: Vec<Change>, releases: Vec<Release>) {
        let now = (self.clock)();
        self.record(now, Batch { changes, releases, reply: None, snapshot: None });
    }

    /// Sends a batch to the journal, counted until recorded; or, without a
    /// journal or with nothing to record or send, completes it at once.
    fn record(&mut self, now: Millis, mut batch: Batch) {
        match &self.journal {
            Some(journal) if !batch.changes.is_empty() || !batch.releases.is_empty() || batch.snapshot.is_some() => {
                self.sent += 1;
                self.unrecorded.push_back((self.sent, now));
                let recorded = self.recorded.clone();
                batch.releases.push(Box::new(move || {
                    recorded.fetch_add(1, Ordering::Release);
                }));
                if let Err(mpsc::error::SendError(batch)) = journal.send(batch) {
                    tracing::error!("the journal has stopped; a decision was not recorded");
                    drop(batch);
                }
            }
            _ => batch.complete(),
        }
    }
}

#[cfg(test)]
mod tests;
