//! Simulated agent desktops over gRPC: each agent says it is AVAILABLE in
//! its groups, keeps its `Subscribe` stream open (its heartbeat), accepts
//! every offer after a short read, handles the chat for a lognormal time
//! and completes it; when the router or the stream goes away it reconnects
//! with backoff, and a resubscribed stream's active chats are finished.
//! When the run ends each agent signs off (OFFLINE).
//!
//! Agents never decide routing; an accept that loses the race with a
//! withdrawal (timeout, cancellation) is counted, not an error.

use super::{connect_grpc, Counters, LoadgenError};
use crate::proto::{self, agent_desk_client::AgentDeskClient};
use crate::rng::Rng;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;

/// One simulated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSpec {
    pub id: String,
    /// Group ids with the agent's proficiency 1-5 in each.
    pub groups: Vec<(String, u32)>,
    pub max_concurrent: u32,
}

/// How agents work.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Time to read an offer before accepting, drawn uniformly in this range.
    pub accept_delay: (Duration, Duration),
    /// Mean handle time of a chat (lognormal, `handle_sigma` in log space).
    pub handle_mean: Duration,
    pub handle_sigma: f64,
}

impl Behaviour {
    /// People: 0.3-2 s to accept, chats of `handle_mean` on average.
    pub fn people(handle_mean: Duration) -> Behaviour {
        Behaviour { accept_delay: (Duration::from_millis(300), Duration::from_secs(2)), handle_mean, handle_sigma: 0.5 }
    }

    /// Machines: accept and complete at once (the benchmark's agents).
    pub fn instant() -> Behaviour {
        Behaviour { accept_delay: (Duration::ZERO, Duration::ZERO), handle_mean: Duration::ZERO, handle_sigma: 0.0 }
    }

    fn draw(&self, rng: &mut Rng) -> (Duration, Duration) {
        let (lo, hi) = self.accept_delay;
        let accept = lo + (hi.saturating_sub(lo)).mul_f64(rng.unit());
        let handle = if self.handle_mean.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(rng.lognormal(self.handle_mean.as_secs_f64(), self.handle_sigma))
        };
        (accept, handle)
    }
}

/// Share of the agents each demo group gets (roughly its share of the work);
/// unknown groups get 0.1.
const GROUP_SHARES: [(&str, f64); 6] = [
    ("pre_sales", 0.28),
    ("orders", 0.26),
    ("after_sales", 0.20),
    ("complaints", 0.10),
    ("fans", 0.12),
    ("supervisors", 0.04),
];

/// Spreads `total` agents (at least one per group) over `groups` by share,
/// named `<prefix>-<group>-<n>`, with proficiencies 2-5.
pub fn roster(groups: &[String], total: usize, max_concurrent: u32, prefix: &str) -> Vec<AgentSpec> {
    let share = |g: &str| GROUP_SHARES.iter().find(|(id, _)| *id == g).map_or(0.1, |(_, s)| *s);
    let sum: f64 = groups.iter().map(|g| share(g)).sum();
    let total = total.max(groups.len());
    let mut counts: Vec<usize> =
        groups.iter().map(|g| ((share(g) / sum) * total as f64).floor().max(1.0) as usize).collect();
    // Hand out what rounding left, largest remainder first.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let rem = |i: usize| (share(&groups[i]) / sum) * total as f64 - counts[i] as f64;
        rem(b).total_cmp(&rem(a))
    });
    for i in order.iter().cycle().take(total.saturating_sub(counts.iter().sum())) {
        counts[*i] += 1;
    }
    groups
        .iter()
        .zip(counts)
        .flat_map(|(group, n)| {
            (1..=n).map(move |i| AgentSpec {
                id: format!("{prefix}-{group}-{i:02}"),
                groups: vec![(group.clone(), 2 + (i as u32 % 4))],
                max_concurrent,
            })
        })
        .collect()
}

/// Called with every offer an agent receives, as it arrives.
pub type OnOffer = Arc<dyn Fn(&proto::Assignment) + Send + Sync>;

/// Running agents; [`stop`](Self::stop) ends them.
pub struct AgentPool {
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// How a pool runs its agents.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    pub behaviour: Behaviour,
    /// 0: each agent has its own connection, as desktops do; n: the agents
    /// share n HTTP/2 connections (the benchmark, to spend less CPU on the
    /// load generator).
    pub connections: usize,
    pub seed: u64,
}

impl AgentPool {
    /// Starts every agent of `specs` against the router at `url`.
    pub fn start(
        url: &str,
        specs: Vec<AgentSpec>,
        options: PoolOptions,
        counters: Arc<Counters>,
        on_offer: Option<OnOffer>,
    ) -> AgentPool {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let lazy = || Channel::from_shared(url.to_string()).ok().map(|c| c.tcp_nodelay(true).connect_lazy());
        let shared: Vec<Option<Channel>> = (0..options.connections).map(|_| lazy()).collect();
        for (i, spec) in specs.into_iter().enumerate() {
            let agent = Agent {
                spec,
                url: url.to_string(),
                channel: shared.get(i % shared.len().max(1)).cloned().flatten(),
                behaviour: options.behaviour,
                counters: counters.clone(),
                on_offer: on_offer.clone(),
                stop: stop.clone(),
                chats: tasks.clone(),
                handling: Arc::default(),
            };
            tasks.spawn(agent.run(Rng::new(options.seed.wrapping_add(i as u64))));
        }
        AgentPool { stop, tasks }
    }

    /// Stops every agent and its chats.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

struct Agent {
    spec: AgentSpec,
    url: String,
    /// A connection shared with other agents, if any.
    channel: Option<Channel>,
    behaviour: Behaviour,
    counters: Arc<Counters>,
    on_offer: Option<OnOffer>,
    stop: CancellationToken,
    chats: TaskTracker,
    /// Inquiries a chat of this agent is handling: a later message for one
    /// (the same offer with a moved deadline, or a replay on resubscribe)
    /// changes nothing for a desktop that already works on it.
    handling: Handling,
}

type Handling = Arc<Mutex<HashSet<String>>>;

impl Agent {
    async fn run(self, mut rng: Rng) {
        let mut backoff = Duration::from_millis(100);
        while !self.stop.is_cancelled() {
            if let Err(e) = self.session(&mut rng).await {
                tracing::debug!(agent_id = %self.spec.id, error = %e, "desktop session ended");
            }
            if self.stop.is_cancelled() {
                break;
            }
            Counters::bump(&self.counters.reconnects);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One desktop session: presence, then offers until the stream ends.
    async fn session(&self, rng: &mut Rng) -> Result<(), LoadgenError> {
        let grpc = |e: tonic::Status| LoadgenError::Grpc { url: self.url.clone(), detail: e.message().to_string() };
        let channel = match &self.channel {
            Some(shared) => shared.clone(),
            None => connect_grpc(&self.url).await?,
        };
        let mut desk = AgentDeskClient::new(channel);
        desk.set_presence(presence(&self.spec)).await.map_err(grpc)?;
        let request = proto::SubscribeRequest { agent_id: self.spec.id.clone() };
        let mut stream = desk.subscribe(request).await.map_err(grpc)?.into_inner();
        let _online = Online::new(&self.counters);
        loop {
            let message = tokio::select! {
                message = stream.message() => message.map_err(grpc)?,
                _ = self.stop.cancelled() => {
                    self.wrap_up(&mut stream, &desk, rng).await;
                    self.sign_off(&mut desk).await;
                    return Ok(());
                }
            };
            let Some(offer) = message else { return Ok(()) };
            self.take(offer, &desk, rng);
        }
    }

    /// Starts a chat for an offer (or a replayed active chat) not yet handled.
    fn take(&self, offer: proto::Assignment, desk: &AgentDeskClient<Channel>, rng: &mut Rng) {
        let Some(inquiry) = offer.inquiry.as_ref().map(|i| i.id.clone()) else { return };
        if offer.withdrawn || !self.handling.lock().expect("not poisoned").insert(inquiry.clone()) {
            return;
        }
        let (accept_after, handle) = self.behaviour.draw(rng);
        if !offer.active {
            if let Some(observe) = &self.on_offer {
                observe(&offer);
            }
            Counters::bump(&self.counters.offered);
        }
        let chat = Chat {
            agent: self.spec.id.clone(),
            inquiry,
            desk: desk.clone(),
            counters: self.counters.clone(),
            handling: self.handling.clone(),
        };
        let accept_after = (!offer.active).then_some(accept_after);
        self.chats.spawn(chat.run(accept_after, handle, self.stop.clone()));
    }

    /// At the end of a run, finishes the work in hand rather than leave it
    /// waiting in the router with nobody to take it: chats accept and
    /// complete at once (see `Chat::run`), and offers still coming (the
    /// router's queues draining into the freed slots) are taken the same
    /// way, until this desktop holds nothing or `WRAP_UP` has passed.
    async fn wrap_up(
        &self,
        stream: &mut tonic::Streaming<proto::Assignment>,
        desk: &AgentDeskClient<Channel>,
        rng: &mut Rng,
    ) {
        let deadline = tokio::time::Instant::now() + WRAP_UP;
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(offer)) => self.take(offer, desk, rng),
                    _ => return,
                },
                _ = tokio::time::sleep(QUIET) => {
                    if self.handling.lock().expect("not poisoned").is_empty() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }
}

/// How long the end of a run may take to finish the work in hand.
const WRAP_UP: Duration = Duration::from_secs(10);
/// No offer for this long, and nothing in hand: the desktop is done.
const QUIET: Duration = Duration::from_millis(300);

impl Agent {
    /// Goes OFFLINE, so the router stops offering work to a desktop that is
    /// gone instead of waiting out the heartbeat grace.
    async fn sign_off(&self, desk: &mut AgentDeskClient<Channel>) {
        let mut request = presence(&self.spec);
        request.status = proto::AgentStatus::Offline as i32;
        let _ = tokio::time::timeout(Duration::from_secs(2), desk.set_presence(request)).await;
    }
}

/// Counts an open offer stream while it lives.
struct Online(Arc<Counters>);

impl Online {
    fn new(counters: &Arc<Counters>) -> Online {
        Counters::bump(&counters.online);
        Online(counters.clone())
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        self.0.online.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn presence(spec: &AgentSpec) -> proto::SetPresenceRequest {
    proto::SetPresenceRequest {
        agent_id: spec.id.clone(),
        status: proto::AgentStatus::Available as i32,
        groups: spec.groups.iter().map(|(g, p)| proto::GroupMembership { group: g.clone(), proficiency: *p }).collect(),
        max_concurrent: spec.max_concurrent,
        languages: vec!["zh".into(), "en".into()],
        skills: Vec::new(),
    }
}

/// One offered (or, after a reconnect, already active) chat.
struct Chat {
    agent: String,
    inquiry: String,
    desk: AgentDeskClient<Channel>,
    counters: Arc<Counters>,
    handling: Handling,
}

impl Drop for Chat {
    fn drop(&mut self) {
        self.handling.lock().expect("not poisoned").remove(&self.inquiry);
    }
}

impl Chat {
    /// Accepts after `accept_after` (None: already accepted), handles for
    /// `handle`, completes.
    /// Once `stop` fires the waits are cut short: the chat is wrapped up
    /// (accepted if need be, completed) within `WRAP_UP`, or given up.
    async fn run(mut self, accept_after: Option<Duration>, handle: Duration, stop: CancellationToken) {
        let pause = |wait: Duration| {
            let stop = stop.clone();
            async move {
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.cancelled() => {}
                    }
                }
            }
        };
        let work = async {
            if let Some(delay) = accept_after {
                pause(delay).await;
                match self.desk.accept(self.action()).await {
                    Ok(_) => Counters::bump(&self.counters.accepted),
                    Err(e) => return self.failed(&e),
                }
            }
            pause(handle).await;
            match self.desk.complete(self.action()).await {
                Ok(_) => Counters::bump(&self.counters.completed),
                Err(e) => self.failed(&e),
            }
        };
        tokio::select! {
            _ = work => {}
            _ = async {
                stop.cancelled().await;
                tokio::time::sleep(WRAP_UP).await;
            } => {}
        }
    }

    fn action(&self) -> proto::InquiryAction {
        proto::InquiryAction { agent_id: self.agent.clone(), inquiry_id: self.inquiry.clone(), reason: String::new() }
    }

    /// A lost race with a withdrawal is counted apart from real errors.
    fn failed(&self, e: &tonic::Status) {
        if matches!(e.code(), tonic::Code::FailedPrecondition | tonic::Code::NotFound) {
            Counters::bump(&self.counters.withdrawn);
        } else {
            Counters::bump(&self.counters.grpc_errors);
            tracing::warn!(agent_id = %self.agent, inquiry_id = %self.inquiry, code = ?e.code(), "desktop call failed");
        }
    }
}
