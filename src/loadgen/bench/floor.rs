//! The agent protocol's own cost: agents made and connected as the router's
//! are (a pool of its own, accepting and completing at once) against a desk
//! in this process that does nothing but offer. Each `Subscribe` stream gets
//! `max_concurrent` offers and every `Complete` sends that agent the next;
//! no routing, no NATS, no auth. What is left is what `Subscribe` + `Accept`
//! + `Complete` cost per inquiry on this machine, client and server together.
//!
//! Set beside the raw ceiling it bounds any router that speaks this contract
//! here: each routed inquiry costs at least the raw ceiling's CPU per message
//! (publish, consume, ack) plus this (see [`Floor::bound_per_sec`]).

use super::{measure, BenchOptions, Processes, Throughput};
use crate::loadgen::agents::{AgentPool, AgentSpec, Behaviour, PoolOptions};
use crate::loadgen::run::wait_for;
use crate::loadgen::traffic::{InquiryMaker, Mix};
use crate::loadgen::{Counters, LoadgenError};
use crate::proto::{self, agent_desk_server::AgentDesk, agent_desk_server::AgentDeskServer};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// The measured exchange, and the bound it gives with the raw ceiling.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Floor {
    /// Offers per second at the agents; CPU per offer of this process
    /// (`loadgen`), which holds both ends.
    pub exchange: Throughput,
    /// Agent calls that failed (they make the figures meaningless).
    pub agent_errors: u64,
    /// The most inquiries per second a router speaking this contract could
    /// route here, CPU-bound: the machine's CPUs over the raw ceiling's CPU
    /// per message (load generator and nats-server) plus this exchange's.
    /// `None` when a CPU time was not measured, nothing was offered or
    /// calls failed.
    pub bound_per_sec: Option<f64>,
    /// `bound_per_sec` over the raw ceiling: the highest ratio reachable.
    pub bound_ratio: Option<f64>,
}

impl Floor {
    /// Adds the bound, given the raw ceiling and the machine's CPU count.
    pub fn with_bound(mut self, raw: &Throughput, cpus: usize) -> Floor {
        let raw_cpu = |name: &str| raw.cpu_us_per_message.get(name).copied();
        let own_cpu = self.exchange.cpu_us_per_message.get("loadgen").copied();
        let clean = self.exchange.messages > 0 && self.agent_errors == 0;
        if let (Some(loadgen), Some(nats), Some(own), true) =
            (raw_cpu("loadgen"), raw_cpu("nats-server"), own_cpu, clean)
        {
            let bound = cpus as f64 * 1e6 / (loadgen + nats + own);
            self.bound_per_sec = Some(bound);
            self.bound_ratio = (raw.per_sec > 0.0).then(|| bound / raw.per_sec);
        }
        self
    }
}

/// Runs the agents against a desk that only offers, for `options.saturation`.
pub async fn measure_exchange(options: &BenchOptions, run: &str) -> Result<Floor, LoadgenError> {
    let cannot_listen =
        |e: std::io::Error| LoadgenError::Grpc { url: "127.0.0.1:0".into(), detail: format!("cannot listen: {e}") };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(cannot_listen)?;
    let url = format!("http://{}", listener.local_addr().map_err(cannot_listen)?);
    let desk = OfferOnlyDesk::new(run, options.max_concurrent, options.seed);
    let offering = desk.offering.clone();
    let stop = CancellationToken::new();
    let serving = tokio::spawn(
        tonic::transport::Server::builder().add_service(AgentDeskServer::new(desk)).serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop.clone().cancelled_owned(),
        ),
    );
    let specs = (1..=options.agents)
        .map(|i| AgentSpec {
            id: format!("{run}-floor-{i:03}"),
            groups: vec![("floor".into(), 3)],
            max_concurrent: options.max_concurrent,
        })
        .collect();
    let counters = Counters::shared();
    let pool_options = PoolOptions { behaviour: Behaviour::instant(), connections: options.connections, seed: 11 };
    let pool = AgentPool::start(&url, specs, pool_options, counters.clone(), None);
    wait_for(Duration::from_secs(10), || Counters::get(&counters.online) >= options.agents as u64).await;
    let own = Processes(vec![("loadgen".into(), std::process::id())]);
    let exchange = measure(options.warmup, options.saturation, || Counters::get(&counters.offered), &own).await;
    // Agents stopping finish what they hold; with no next offer they soon do.
    offering.cancel();
    pool.stop().await;
    stop.cancel();
    // Graceful shutdown waits for every connection; the agents closed theirs.
    if tokio::time::timeout(Duration::from_secs(5), serving).await.is_err() {
        tracing::warn!("the offer-only desk did not shut down within 5 s; going on");
    }
    let agent_errors = counters.errors();
    if agent_errors > 0 {
        eprintln!("bench: {agent_errors} agent calls failed against the offer-only desk; no bound from it");
    }
    Ok(Floor { exchange, agent_errors, ..Floor::default() })
}

/// Inquiries drawn before the run (the mix repeats every this many offers).
const PREPARED: usize = 1024;

type OfferSender = mpsc::Sender<Result<proto::Assignment, Status>>;

/// A desk that keeps every subscribed agent `max_concurrent` offers deep.
struct OfferOnlyDesk {
    streams: Mutex<HashMap<String, OfferSender>>,
    /// Inquiries drawn before the run, offered in turn under fresh ids:
    /// drawing them is the publisher's cost, not the protocol's.
    inquiries: Vec<proto::Inquiry>,
    run: String,
    next: AtomicU64,
    depth: u32,
    /// Cancelled: completions bring no further offer.
    offering: CancellationToken,
}

impl OfferOnlyDesk {
    fn new(run: &str, depth: u32, seed: u64) -> OfferOnlyDesk {
        let run = format!("{run}-floor");
        let mut maker = InquiryMaker::new(&run, Mix::NoDeflection, seed);
        OfferOnlyDesk {
            streams: Mutex::default(),
            inquiries: (0..PREPARED).map(|_| maker.next(0)).collect(),
            run,
            next: AtomicU64::new(0),
            depth: depth.max(1),
            offering: CancellationToken::new(),
        }
    }

    /// The next offer for `agent_id`, as the router would send it (no trace).
    fn offer(&self, agent_id: &str) -> proto::Assignment {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut inquiry = self.inquiries[n as usize % PREPARED].clone();
        inquiry.id = format!("{}-{n}", self.run);
        proto::Assignment {
            inquiry: Some(inquiry),
            agent_id: agent_id.to_string(),
            group: "floor".into(),
            ..Default::default()
        }
    }

    fn sender(&self, agent_id: &str) -> Option<OfferSender> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(agent_id).cloned()
    }
}

#[tonic::async_trait]
impl AgentDesk for OfferOnlyDesk {
    async fn set_presence(
        &self,
        request: Request<proto::SetPresenceRequest>,
    ) -> Result<Response<proto::SetPresenceResponse>, Status> {
        let capacity = request.get_ref().max_concurrent;
        Ok(Response::new(proto::SetPresenceResponse { status: request.get_ref().status, load: 0, capacity }))
    }

    type SubscribeStream = ReceiverStream<Result<proto::Assignment, Status>>;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let agent_id = request.into_inner().agent_id;
        // Room for the first offers and one per completion in flight.
        let (tx, rx) = mpsc::channel(2 * self.depth as usize);
        for _ in 0..self.depth {
            let _ = tx.try_send(Ok(self.offer(&agent_id)));
        }
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(agent_id, tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn accept(&self, _: Request<proto::InquiryAction>) -> Result<Response<proto::ActionResponse>, Status> {
        Ok(Response::new(proto::ActionResponse { state: proto::InquiryState::Active as i32 }))
    }

    async fn decline(&self, _: Request<proto::InquiryAction>) -> Result<Response<proto::ActionResponse>, Status> {
        Ok(Response::new(proto::ActionResponse { state: proto::InquiryState::Waiting as i32 }))
    }

    async fn complete(
        &self,
        request: Request<proto::InquiryAction>,
    ) -> Result<Response<proto::ActionResponse>, Status> {
        let agent_id = &request.get_ref().agent_id;
        if let Some(tx) = (!self.offering.is_cancelled()).then(|| self.sender(agent_id)).flatten() {
            let _ = tx.send(Ok(self.offer(agent_id))).await;
        }
        Ok(Response::new(proto::ActionResponse { state: proto::InquiryState::Completed as i32 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn throughput(per_sec: f64, cpu: &[(&str, f64)]) -> Throughput {
        let cpu_us_per_message: BTreeMap<String, f64> = cpu.iter().map(|&(n, c)| (n.to_string(), c)).collect();
        Throughput { per_sec, cpu_us_per_message, ..Throughput::default() }
    }

    #[test]
    fn the_bound_adds_both_costs_per_inquiry_over_the_cpus() {
        let raw = throughput(80_000.0, &[("loadgen", 5.0), ("nats-server", 15.0), ("router", 0.0)]);
        let exchange = Throughput { messages: 400_000, ..throughput(40_000.0, &[("loadgen", 30.0)]) };
        let floor = Floor { exchange, ..Floor::default() }.with_bound(&raw, 2);
        // 2 CPUs, 20 + 30 µs per inquiry: 40,000/s, half the raw ceiling.
        assert_eq!(floor.bound_per_sec, Some(40_000.0));
        assert_eq!(floor.bound_ratio, Some(0.5));
    }

    #[tokio::test]
    async fn agents_take_offer_after_offer_from_the_offer_only_desk() {
        let options = BenchOptions {
            nats_url: String::new(),
            grpc_url: String::new(),
            prefix: "support".into(),
            rates: Vec::new(),
            step: Duration::from_secs(1),
            repeat: 1,
            saturation: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            agents: 2,
            max_concurrent: 3,
            connections: 1,
            format: crate::loadgen::traffic::Format::Json,
            backlog: 1,
            seed: 1,
            processes: Processes::default(),
        };
        let measuring = measure_exchange(&options, "t");
        let floor = tokio::time::timeout(Duration::from_secs(60), measuring)
            .await
            .expect("the measurement ends, desk and agents stopped")
            .expect("the desk serves on a free port");
        // Each completion brought the next offer: far more than the 6 first ones.
        assert!(floor.exchange.messages > 6, "offers measured: {}", floor.exchange.messages);
        assert_eq!(floor.agent_errors, 0);
    }

    #[test]
    fn without_the_servers_cpu_time_or_clean_offers_there_is_no_bound() {
        let exchange = throughput(40_000.0, &[("loadgen", 30.0)]);
        let floor = Floor { exchange: Throughput { messages: 400_000, ..exchange }, ..Floor::default() };
        let raw_without_nats = throughput(80_000.0, &[("loadgen", 5.0)]);
        assert_eq!(floor.clone().with_bound(&raw_without_nats, 2).bound_per_sec, None);
        let raw = throughput(80_000.0, &[("loadgen", 5.0), ("nats-server", 15.0)]);
        assert!(floor.clone().with_bound(&raw, 2).bound_per_sec.is_some());
        let failed = Floor { agent_errors: 1, ..floor.clone() };
        assert_eq!(failed.with_bound(&raw, 2).bound_per_sec, None);
        let nothing_offered = Floor { exchange: Throughput { messages: 0, ..floor.exchange.clone() }, ..floor };
        assert_eq!(nothing_offered.with_bound(&raw, 2).bound_per_sec, None);
    }
}
