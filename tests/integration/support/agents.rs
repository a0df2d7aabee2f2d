//! Simulated agents for fault tests: each one keeps a desktop stream open,
//! accepts every offer and completes it, reconnects when the router goes
//! away, and writes down which inquiries it accepted.

use super::client::{connect, presence};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticket_router::proto;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Who accepted what, across restarts.
#[derive(Clone, Default)]
pub struct Ledger {
    owners: Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>,
    accepted: Arc<AtomicU64>,
}

impl Ledger {
    fn accepted_by(&self, inquiry: &str, agent: &str) {
        self.owners.lock().unwrap().entry(inquiry.to_string()).or_default().insert(agent.to_string());
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Successful accepts so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Inquiries that two different agents accepted.
    pub fn double_owners(&self) -> Vec<String> {
        self.owners.lock().unwrap().iter().filter(|(_, a)| a.len() > 1).map(|(i, _)| i.clone()).collect()
    }
}

/// A set of simulated agents.
pub struct AgentPool {
    url: watch::Sender<String>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AgentPool {
    /// Starts `count` agents per group, five chats each.
    pub async fn start(url: String, groups: &[(&str, usize)], ledger: Ledger) -> AgentPool {
        let (tx, rx) = watch::channel(url);
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for (group, count) in groups {
            for i in 0..*count {
                let agent = format!("{group}-agent-{i}");
                let (rx, stop, ledger, group) = (rx.clone(), stop.clone(), ledger.clone(), group.to_string());
                tasks.push(tokio::spawn(run_agent(agent, group, rx, ledger, stop)));
            }
        }
        AgentPool { url: tx, stop, tasks }
    }

    /// Points every agent at a (restarted) router.
    pub async fn reconnect(&self, url: String) {
        let _ = self.url.send(url);
    }

    /// Stops every agent.
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn run_agent(
    agent: String,
    group: String,
    mut url: watch::Receiver<String>,
    ledger: Ledger,
    stop: CancellationToken,
) {
    let mut active: BTreeSet<String> = BTreeSet::new();
    while !stop.is_cancelled() {
        let current = url.borrow_and_update().clone();
        tokio::select! {
            _ = serve_desk(&agent, &group, &current, &ledger, &mut active) => {}
            _ = url.changed() => {}
            _ = stop.cancelled() => return,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One desktop session; returns when the stream or the router goes away.
async fn serve_desk(agent: &str, group: &str, url: &str, ledger: &Ledger, active: &mut BTreeSet<String>) {
    let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(2), connect_quietly(url)).await else { return };
    if c.desk.set_presence(presence(agent, &[(group, 3)], 5)).await.is_err() {
        return;
    }
    // Chats accepted before the router went away are still ours: finish them.
    for inquiry in std::mem::take(active) {
        let action =
            proto::InquiryAction { agent_id: agent.into(), inquiry_id: inquiry.clone(), reason: String::new() };
        if let Err(e) = c.desk.complete(action).await {
            if router_gone(&e) {
                active.insert(inquiry);
                return;
            }
        }
    }
    let Ok(stream) = c.desk.subscribe(proto::SubscribeRequest { agent_id: agent.into() }).await else { return };
    let mut stream = stream.into_inner();
    // Like a person at the desktop: back to AVAILABLE whenever the router set
    // us AWAY (offers that timed out while this desktop was reconnecting to a
    // restarted router, for instance).
    let mut desk = c.desk.clone();
    let (me, team) = (agent.to_string(), group.to_string());
    let keep_available = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if desk.set_presence(presence(&me, &[(&team, 3)], 5)).await.is_err() {
                return;
            }
        }
    });
    let _stop_keeping = AbortOnDrop(keep_available);
    while let Ok(Some(offer)) = stream.message().await {
        if offer.withdrawn {
            continue;
        }
        let Some(inquiry) = offer.inquiry.map(|i| i.id) else { continue };
        if offer.active {
            active.insert(inquiry.clone());
            let action =
                proto::InquiryAction { agent_id: agent.into(), inquiry_id: inquiry.clone(), reason: String::new() };
            match c.desk.complete(action).await {
                Err(e) if router_gone(&e) => return,
                _ => {
                    active.remove(&inquiry);
                }
            }
            continue;
        }
        let action =
            proto::InquiryAction { agent_id: agent.into(), inquiry_id: inquiry.clone(), reason: String::new() };
        match c.desk.accept(action.clone()).await {
            Ok(_) => ledger.accepted_by(&inquiry, agent),
            Err(e) if router_gone(&e) => return,
            Err(_) => continue,
        }
        active.insert(inquiry.clone());
        match c.desk.complete(action).await {
            Ok(_) => {
                active.remove(&inquiry);
            }
            Err(e) if router_gone(&e) => return,
            Err(_) => {
                active.remove(&inquiry);
            }
        }
    }
}

async fn connect_quietly(url: &str) -> Result<super::client::Clients, ()> {
    let channel = tonic::transport::Channel::from_shared(url.to_string()).map_err(|_| ())?;
    if channel.connect().await.is_err() {
        return Err(());
    }
    Ok(connect(url, None).await)
}

/// Whether an error means the router (not the request) is the problem.
fn router_gone(e: &tonic::Status) -> bool {
    !matches!(
        e.code(),
        tonic::Code::FailedPrecondition
            | tonic::Code::PermissionDenied
            | tonic::Code::NotFound
            | tonic::Code::InvalidArgument
    )
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
