//! The gRPC adapter over a real socket: the engine with the offer hub as its
//! only sink (no NATS), the server on `127.0.0.1:0`, and the generated tonic
//! clients. Waits poll with generous deadlines; nothing asserts timings.

use crate::support::client::{connect, next_offer, presence, token, Clients, TEST_SECRET};
use crate::support::eventually;
use std::time::Duration;
use ticket_router::adapters::engine::{Engine, EngineHandle};
use ticket_router::adapters::grpc::{GrpcError, GrpcServer, Health, OfferHub};
use ticket_router::config::{GrpcAuth, GrpcSettings, Secret};
use ticket_router::core::{testkit, Category, Command, Router, RoutingSettings};
use ticket_router::proto::{self, decision_trace, inquiry_event::Kind, transfer_request::Target};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;

mod desks;
mod transport;

const WAIT: Duration = Duration::from_secs(20);

struct TestServer {
    url: String,
    engine: EngineHandle,
    stop_grpc: CancellationToken,
    stop_engine: CancellationToken,
    grpc: JoinHandle<Result<(), GrpcError>>,
    engine_task: JoinHandle<Router>,
}

fn open_auth() -> GrpcAuth {
    GrpcAuth { mode: "none".into(), ..GrpcAuth::default() }
}

fn jwt_auth() -> GrpcAuth {
    GrpcAuth { mode: "jwt".into(), hs256_secret: Some(Secret::new(TEST_SECRET)), ..GrpcAuth::default() }
}

async fn start(auth: GrpcAuth) -> TestServer {
    start_with(GrpcSettings { listen: "127.0.0.1:0".into(), auth, ..GrpcSettings::default() }).await
}

async fn start_with(settings: GrpcSettings) -> TestServer {
    let mut routing = RoutingSettings::default();
    routing.agents.heartbeat_grace = Duration::from_secs(1);
    let hub = OfferHub::new();
    let (engine, handle) = Engine::new(Router::new(routing).expect("default settings"), vec![Box::new(hub.clone())]);
    let stop_engine = CancellationToken::new();
    let engine_task = tokio::spawn(engine.run(stop_engine.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = GrpcServer::new(handle.clone(), hub, &settings).expect("server settings");
    let health = Health::new().await;
    health.set_serving(true).await;
    let stop_grpc = CancellationToken::new();
    let grpc = tokio::spawn(server.serve(listener, health, stop_grpc.clone().cancelled_owned()));
    TestServer { url, engine: handle, stop_grpc, stop_engine, grpc, engine_task }
}

impl TestServer {
    async fn clients(&self, token: Option<String>) -> Clients {
        connect(&self.url, token).await
    }

    async fn arrive(&self, id: &str, category: Category) {
        self.engine.submit(Command::Arrive(Box::new(testkit::inquiry(id, category)))).await.expect("engine running");
    }

    /// Stops the server (open offer streams included) and then the engine.
    async fn stop(self) {
        self.stop_grpc.cancel();
        tokio::time::timeout(WAIT, self.grpc).await.expect("server stops").expect("join").expect("served");
        self.stop_engine.cancel();
        drop(self.engine);
        tokio::time::timeout(WAIT, self.engine_task).await.expect("engine stops").expect("join");
    }
}

fn clone_clients(c: &Clients) -> Clients {
    Clients { desk: c.desk.clone(), handoff: c.handoff.clone(), ops: c.ops.clone() }
}

fn action(agent: &str, inquiry: &str) -> proto::InquiryAction {
    proto::InquiryAction { agent_id: agent.into(), inquiry_id: inquiry.into(), reason: String::new() }
}

fn note(summary: &str) -> Option<proto::HandoffNote> {
    Some(proto::HandoffNote {
        summary: summary.into(),
        attempted: "checked the order".into(),
        customer_expectation: "a refund today".into(),
        ..proto::HandoffNote::default()
    })
}

async fn subscribe(c: &mut Clients, agent: &str) -> tonic::Streaming<proto::Assignment> {
    c.desk.subscribe(proto::SubscribeRequest { agent_id: agent.into() }).await.expect("Subscribe").into_inner()
}

async fn detail(c: &mut Clients, id: &str) -> proto::InquiryDetail {
    c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: id.into() }).await.expect("GetInquiry").into_inner()
}

async fn queues(c: &mut Clients) -> proto::GetQueuesResponse {
    c.ops.get_queues(proto::GetQueuesRequest {}).await.expect("GetQueues").into_inner()
}

fn agents_in(q: &proto::GetQueuesResponse, group: &str, status: proto::AgentStatus) -> u32 {
    let g = q.groups.iter().find(|g| g.group == group).expect("group listed");
    g.agents.iter().find(|a| a.status == status as i32).map_or(0, |a| a.count)
}

#[tokio::test]
async fn an_offer_streams_to_the_desktop_and_is_accepted_and_completed() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    let reply = c.desk.set_presence(presence("a1", &[("orders", 4)], 0)).await.unwrap().into_inner();
    assert_eq!(reply.status, proto::AgentStatus::Available as i32);
    assert_eq!(reply.capacity, 5, "max_concurrent 0 takes the default");
    let mut offers = subscribe(&mut c, "a1").await;
    let mark = offers.message().await.unwrap().expect("the catch-up mark");
    assert!(mark.caught_up && mark.inquiry.is_none(), "nothing held yet: {mark:?}");

    // A decline: the desktop is told why the offer went, the lead reads the reason.
    server.arrive("q0", Category::Order).await;
    assert_eq!(next_offer(&mut offers).await.inquiry.unwrap().id, "q0");
    let decline = proto::InquiryAction { reason: "needs Cantonese".into(), ..action("a1", "q0") };
    c.desk.decline(decline).await.unwrap();
    let withdrawn = offers.message().await.unwrap().unwrap();
    assert_eq!((withdrawn.withdrawn, withdrawn.note.unwrap().summary.as_str()), (true, "declined"));
    let declined = detail(&mut c, "q0").await.timeline.into_iter().find(|e| e.kind == Kind::Declined as i32);
    assert_eq!(declined.expect("DECLINED step").detail, "needs Cantonese");

    server.arrive("q1", Category::Order).await;
    let offer = next_offer(&mut offers).await;
    assert_eq!(offer.inquiry.as_ref().unwrap().id, "q1");
    assert_eq!((offer.agent_id.as_str(), offer.group.as_str(), offer.attempt), ("a1", "orders", 1));
    assert!(offer.expires_at_ms > offer.offered_at_ms);
    let trace = offer.trace.expect("offer explains itself");
    assert_eq!(trace.band, decision_trace::Band::Normal as i32);
    assert_ne!(trace.rule, decision_trace::Rule::Unspecified as i32);

    let accepted = c.desk.accept(action("a1", "q1")).await.unwrap().into_inner();
    assert_eq!(accepted.state, proto::InquiryState::Active as i32);
    let d = detail(&mut c, "q1").await;
    assert_eq!(
        (d.state, d.owner_agent_id.as_str(), d.group.as_str()),
        (proto::InquiryState::Active as i32, "a1", "orders")
    );
    let kinds: Vec<i32> = d.timeline.iter().map(|e| e.kind).collect();
    assert!(kinds.ends_with(&[Kind::Offered as i32, Kind::Accepted as i32]), "{kinds:?}");
    let offered = d.timeline.iter().find(|e| e.kind == Kind::Offered as i32).unwrap();
    assert_eq!(offered.trace.as_ref(), Some(&trace), "GetInquiry shows the offer's trace");

    let done = c.desk.complete(action("a1", "q1")).await.unwrap().into_inner();
    assert_eq!(done.state, proto::InquiryState::Completed as i32);
    let again = c.desk.complete(action("a1", "q1")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{}", again.message());
    // The offer stream is still open: stopping the server must end it.
    server.stop().await;
}

#[tokio::test]
async fn a_reconnecting_desktop_gets_its_held_offer_again() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    c.desk.set_presence(presence("a1", &[("orders", 3)], 2)).await.unwrap();
    let mut first = subscribe(&mut c, "a1").await;
    server.arrive("q1", Category::Logistics).await;
    let offer = next_offer(&mut first).await;
    drop(first);
    let mut second = subscribe(&mut c, "a1").await;
    let resent = next_offer(&mut second).await;
    assert_eq!(resent.inquiry.as_ref().unwrap().id, "q1");
    assert_eq!((resent.offered_at_ms, resent.expires_at_ms), (offer.offered_at_ms, offer.expires_at_ms));
    assert_eq!(resent.trace, offer.trace);
    assert_eq!(c.desk.accept(action("a1", "q1")).await.unwrap().into_inner().state, proto::InquiryState::Active as i32);
    server.stop().await;
}

#[tokio::test]
async fn a_transfer_with_a_note_reaches_another_agent_and_only_the_holder_may_transfer() {
    let server = start(jwt_auth()).await;
    let mut a1 = server.clients(Some(token("a1", "agent"))).await;
    let mut a2 = server.clients(Some(token("a2", "agent"))).await;
    a1.desk.set_presence(presence("a1", &[("orders", 3)], 5)).await.unwrap();
    a2.desk.set_presence(presence("a2", &[("after_sales", 3)], 5)).await.unwrap();
    let mut a1_offers = subscribe(&mut a1, "a1").await;
    let mut a2_offers = subscribe(&mut a2, "a2").await;
    server.arrive("q1", Category::Order).await;
    assert_eq!(next_offer(&mut a1_offers).await.inquiry.unwrap().id, "q1");
    a1.desk.accept(action("a1", "q1")).await.unwrap();

    let transfer = |summary: &str| proto::TransferRequest {
        inquiry_id: "q1".into(),
        target: Some(Target::ToGroup("after_sales".into())),
        note: note(summary),
    };
    let denied = a2.handoff.transfer(transfer("not mine")).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{}", denied.message());
    assert_eq!(detail(&mut a1, "q1").await.owner_agent_id, "a1", "a refused transfer changes nothing");

    let moved = a1.handoff.transfer(transfer("wants a refund for a late parcel")).await.unwrap().into_inner();
    assert_ne!(moved.state, proto::InquiryState::Active as i32);
    let offer = next_offer(&mut a2_offers).await;
    assert_eq!((offer.inquiry.as_ref().unwrap().id.as_str(), offer.group.as_str()), ("q1", "after_sales"));
    let n = offer.note.expect("the handoff note travels with the offer");
    assert_eq!((n.summary.as_str(), n.author.as_str()), ("wants a refund for a late parcel", "a1"));
    assert_eq!(offer.trace.unwrap().rule, decision_trace::Rule::TransferTarget as i32);

    let d = detail(&mut a2, "q1").await;
    let transferred = d.timeline.iter().find(|e| e.kind == Kind::Transferred as i32).expect("TRANSFERRED entry");
    assert_eq!(transferred.note.as_ref().unwrap().customer_expectation, "a refund today");
    let bad = a1.handoff.transfer(proto::TransferRequest { target: None, ..transfer("x") }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{}", bad.message());
    for note in [None, note("  ")] {
        let bad = a1.handoff.transfer(proto::TransferRequest { note, ..transfer("x") }).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "a transfer without a summary: {}", bad.message());
    }
    server.stop().await;
}

#[tokio::test]
async fn an_escalation_lands_in_the_supervisors_with_high_band() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    c.desk.set_presence(presence("a1", &[("orders", 3)], 5)).await.unwrap();
    c.desk.set_presence(presence("sup1", &[("supervisors", 5)], 5)).await.unwrap();
    let mut a1_offers = subscribe(&mut c, "a1").await;
    let mut sup_offers = subscribe(&mut c, "sup1").await;
    server.arrive("q1", Category::Order).await;
    assert_eq!(next_offer(&mut a1_offers).await.inquiry.unwrap().id, "q1");
    c.desk.accept(action("a1", "q1")).await.unwrap();

    let request = proto::EscalateRequest { inquiry_id: "q1".into(), note: note("customer threatens a complaint") };
    c.handoff.escalate(request).await.unwrap();
    let offer = next_offer(&mut sup_offers).await;
    assert_eq!((offer.inquiry.as_ref().unwrap().id.as_str(), offer.group.as_str()), ("q1", "supervisors"));
    let trace = offer.trace.unwrap();
    assert_eq!(trace.band, decision_trace::Band::High as i32);
    assert_eq!(trace.rule, decision_trace::Rule::Escalation as i32);
    let d = detail(&mut c, "q1").await;
    assert!(d.escalated);
    assert_eq!((d.band, d.owner_agent_id.as_str()), (decision_trace::Band::High as i32, "sup1"));
    server.stop().await;
}

/// Forwards one TCP connection to `upstream` until `freeze` fires, then
/// holds both sockets open and silent: a desktop whose network vanished
/// without a FIN or RST (a sleeping laptop, a NAT that forgot the flow).
async fn freezing_proxy(upstream: String, freeze: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = tokio::net::TcpStream::connect(upstream.trim_start_matches("http://")).await.expect("upstream");
        let (mut client, mut server) = (client, server);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            _ = freeze.cancelled() => {}
        }
        std::future::pending::<()>().await;
        drop((client, server));
    });
    url
}

#[tokio::test]
async fn a_desktop_gone_silent_without_closing_is_dropped_by_keepalive_and_set_away() {
    let settings = GrpcSettings {
        listen: "127.0.0.1:0".into(),
        auth: open_auth(),
        keepalive: Duration::from_secs(1),
        ..GrpcSettings::default()
    };
    let server = start_with(settings).await;
    let freeze = CancellationToken::new();
    let mut desktop = connect(&freezing_proxy(server.url.clone(), freeze.clone()).await, None).await;
    desktop.desk.set_presence(presence("a1", &[("orders", 3)], 5)).await.unwrap();
    let _offers = subscribe(&mut desktop, "a1").await;
    freeze.cancel();

    let c = server.clients(None).await;
    eventually("a1 AWAY once its silent connection is dropped and the grace has run", WAIT, || {
        let mut c = clone_clients(&c);
        async move { (agents_in(&queues(&mut c).await, "orders", proto::AgentStatus::Away) == 1).then_some(()) }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_offer_stream_sets_the_agent_away_after_the_grace() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    c.desk.set_presence(presence("a1", &[("orders", 3)], 5)).await.unwrap();
    let mut offers = subscribe(&mut c, "a1").await;
    server.arrive("q1", Category::Order).await;
    next_offer(&mut offers).await;
    drop(offers);

    eventually("a1 AWAY after the heartbeat grace", WAIT, || {
        let mut c = clone_clients(&c);
        async move { (agents_in(&queues(&mut c).await, "orders", proto::AgentStatus::Away) == 1).then_some(()) }
    })
    .await;
    let d = detail(&mut c, "q1").await;
    assert_eq!(d.state, proto::InquiryState::Waiting as i32, "the unaccepted offer went back to the queue");
    assert!(d.timeline.iter().any(|e| e.kind == Kind::Requeued as i32));
    server.stop().await;
}

#[tokio::test]
async fn tokens_decide_who_may_do_what() {
    let server = start(jwt_auth()).await;
    let mut anonymous = server.clients(None).await;
    let err = anonymous.ops.get_queues(proto::GetQueuesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("authorization"), "{}", err.message());
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({ "sub": "a1", "role": "admin", "exp": 4_102_444_800u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-of-sufficient-length"),
    )
    .unwrap();
    let err = server.clients(Some(forged)).await.ops.get_queues(proto::GetQueuesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());

    let mut agent = server.clients(Some(token("a1", "agent"))).await;
    let err = agent.desk.set_presence(presence("a2", &[("orders", 3)], 5)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());
    let err = agent.desk.subscribe(proto::SubscribeRequest { agent_id: "a2".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{}", err.message());

    let pin = proto::SetLevelOverrideRequest {
        group: String::new(),
        min_level: proto::LoadLevel::Peak as i32,
        from_ms: 0,
        until_ms: unix_ms() + 3_600_000,
    };
    for role in ["agent", "lead"] {
        let mut c = server.clients(Some(token("x", role))).await;
        let err = c.ops.set_level_override(pin.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role}: {}", err.message());
    }
    assert_eq!(queues(&mut agent).await.router_level, proto::LoadLevel::Normal as i32, "reads are open to agents");

    let mut admin = server.clients(Some(token("boss", "admin"))).await;
    let set = admin.ops.set_level_override(pin.clone()).await.unwrap().into_inner();
    assert_eq!((set.min_level, set.until_ms), (proto::LoadLevel::Peak as i32, pin.until_ms));
    assert!(set.from_ms > 0, "from_ms 0 is resolved to now");
    eventually("router pinned at PEAK", WAIT, || {
        let mut c = clone_clients(&admin);
        async move { (queues(&mut c).await.router_level == proto::LoadLevel::Peak as i32).then_some(()) }
    })
    .await;
    let q = queues(&mut admin).await;
    assert!(q.groups.iter().all(|g| g.level == proto::LoadLevel::Peak as i32), "a global pin raises every group");
    assert_eq!(q.overrides, [set], "GetQueues lists the pin");
    let clear = || proto::ClearLevelOverrideRequest { group: String::new() };
    assert!(admin.ops.clear_level_override(clear()).await.unwrap().into_inner().cleared);
    assert!(queues(&mut admin).await.overrides.is_empty());
    let again = admin.ops.clear_level_override(clear()).await.unwrap().into_inner();
    assert!(!again.cleared, "nothing was set any more");
    server.stop().await;
}

#[tokio::test]
async fn bad_fields_are_invalid_arguments_and_change_nothing() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    let mut unspecified = presence("a1", &[("orders", 3)], 5);
    unspecified.status = proto::AgentStatus::Unspecified as i32;
    let bad_presences = [
        unspecified,
        presence("a1", &[("orders", 0)], 5),
        presence("a1", &[("orders", 6)], 5),
        presence("a1", &[], 5),
        presence("", &[("orders", 3)], 5),
        proto::SetPresenceRequest { skills: vec!["x".repeat(1_200_000)], ..presence("a1", &[("orders", 3)], 5) },
        proto::SetPresenceRequest {
            skills: (0..63).map(|i| format!("s{i}")).collect(),
            ..presence("a1", &[("orders", 3)], 5)
        },
        proto::SetPresenceRequest { languages: vec!["zh cn".into()], ..presence("a1", &[("orders", 3)], 5) },
    ];
    for request in bad_presences {
        let err = c.desk.set_presence(request.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}: {}", err.message());
    }
    let q = queues(&mut c).await;
    assert!(q.groups.iter().all(|g| g.agents.iter().all(|a| a.count == 0)), "no agent was created: {q:?}");
    let err = c.desk.subscribe(proto::SubscribeRequest { agent_id: "a1".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());

    server.arrive("q1", Category::Order).await;
    let err = c.desk.accept(action("a1", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c.desk.accept(action("a1", &"q".repeat(2_000_000))).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "a long id is refused, not echoed whole");
    assert!(err.message().len() < 400, "{} bytes", err.message().len());
    let err = c.handoff.transfer(proto::TransferRequest { inquiry_id: "q1".into(), target: None, note: None }).await;
    assert_eq!(err.unwrap_err().code(), Code::InvalidArgument);
    let err = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    let d = detail(&mut c, "q1").await;
    assert_eq!((d.state, d.group.as_str()), (proto::InquiryState::Waiting as i32, "orders"));

    let now = unix_ms();
    let backwards = proto::SetLevelOverrideRequest {
        group: "orders".into(),
        min_level: proto::LoadLevel::Surge as i32,
        from_ms: now + 60_000,
        until_ms: now + 30_000,
    };
    let err = c.ops.set_level_override(backwards.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    let err = c.ops.set_level_override(proto::SetLevelOverrideRequest { min_level: 7, ..backwards.clone() }).await;
    assert_eq!(err.unwrap_err().code(), Code::InvalidArgument);
    // NORMAL, or no level at all, would silently replace a pin in force.
    let normal = proto::SetLevelOverrideRequest {
        min_level: proto::LoadLevel::Normal as i32,
        from_ms: 0,
        until_ms: now + 60_000,
        ..backwards
    };
    let err = c.ops.set_level_override(normal).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(queues(&mut c).await.groups.iter().all(|g| g.level == proto::LoadLevel::Normal as i32));
    server.stop().await;
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
