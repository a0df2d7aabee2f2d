//! `ticket-router serve` end to end: a real nats-server, the real binary, a
//! real tonic client, and `/metrics` scraped over HTTP.

use crate::support::client::{self, connect, inquiry_json, next_offer, presence, publish, token};
use crate::support::eventually;
use crate::support::nats_server::NatsServer;
use crate::support::router::{groups_toml, sample, test_config, RouterProcess};
use futures::StreamExt;
use prost::Message;
use std::time::{Duration, Instant};
use ticket_router::proto;
use ticket_router::proto::inquiry_event::Kind;

const WAIT: Duration = Duration::from_secs(20);

struct World {
    _nats: NatsServer,
    router: RouterProcess,
    bus: async_nats::Client,
}

async fn world(extra: &str) -> World {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&test_config(&nats.url(), "support", extra));
    let bus = async_nats::connect(nats.url()).await.expect("connect to test NATS");
    World { _nats: nats, router, bus }
}

async fn waiting_in(clients: &mut client::Clients, group: &str) -> u32 {
    let queues = clients.ops.get_queues(proto::GetQueuesRequest {}).await.expect("GetQueues").into_inner();
    queues.groups.iter().find(|g| g.group == group).map_or(0, |g| g.waiting_high + g.waiting_normal + g.waiting_low)
}

async fn wait_waiting(clients: &mut client::Clients, group: &str, n: u32) {
    for _ in 0..400 {
        if waiting_in(clients, group).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{group} never had {n} waiting");
}

#[tokio::test]
async fn json_and_protobuf_inquiries_are_offered_accepted_and_completed_with_ordered_events() {
    let w = world("").await;
    let mut events = w.bus.subscribe("support.events.shop-1").await.unwrap();
    let mut c = connect(&w.router.grpc_url(), None).await;
    c.desk.set_presence(presence("agent-a", &[("orders", 3)], 5)).await.unwrap();
    let mut offers =
        c.desk.subscribe(proto::SubscribeRequest { agent_id: "agent-a".into() }).await.unwrap().into_inner();

    let started = Instant::now();
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("json-1", "ORDER", 0, false)).await;
    let offer = next_offer(&mut offers).await;
    let json_latency = started.elapsed();
    assert_eq!(offer.inquiry.as_ref().unwrap().id, "json-1");
    assert_eq!(offer.group, "orders");

    let wire = proto::Inquiry {
        id: "proto-1".into(),
        category: proto::Category::Logistics as i32,
        customer: Some(proto::Customer { id: "c2".into(), ..Default::default() }),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/protobuf");
    headers.insert("Nats-Msg-Id", "proto-1");
    let started = Instant::now();
    w.bus.publish_with_headers("support.inquiries.shop-1", headers, wire.encode_to_vec().into()).await.unwrap();
    let offer2 = next_offer(&mut offers).await;
    let proto_latency = started.elapsed();
    assert_eq!(offer2.inquiry.as_ref().unwrap().id, "proto-1");
    println!("publish -> offer latency: json {json_latency:?}, protobuf {proto_latency:?}");

    for id in ["json-1", "proto-1"] {
        let action = proto::InquiryAction { agent_id: "agent-a".into(), inquiry_id: id.into(), reason: String::new() };
        let state = c.desk.accept(action.clone()).await.unwrap().into_inner().state;
        assert_eq!(state, proto::InquiryState::Active as i32);
        let state = c.desk.complete(action).await.unwrap().into_inner().state;
        assert_eq!(state, proto::InquiryState::Completed as i32);
    }
    let mut seen: Vec<(String, i32)> = Vec::new();
    while seen.len() < 6 {
        let message = tokio::time::timeout(WAIT, events.next()).await.expect("events").expect("subscription");
        let content_type = message.headers.as_ref().and_then(|h| h.get("Content-Type")).map(|v| v.as_str());
        assert_eq!(content_type, Some("application/json"), "JSON unless configured otherwise");
        let event: proto::InquiryEvent = serde_json::from_slice(&message.payload).expect("JSON event");
        seen.push((event.inquiry_id, event.kind));
    }
    for id in ["json-1", "proto-1"] {
        let kinds: Vec<i32> = seen.iter().filter(|(i, _)| i == id).map(|(_, k)| *k).collect();
        assert_eq!(kinds, [Kind::Offered as i32, Kind::Accepted as i32, Kind::Completed as i32], "{id}");
    }
}

#[tokio::test]
async fn outbound_messages_can_be_protobuf_and_say_so() {
    let nats = NatsServer::start();
    let config = test_config(&nats.url(), "support", "");
    let router = RouterProcess::start_with_env(&config, &[("TICKET_ROUTER_NATS_OUTBOUND_ENCODING", "protobuf")]);
    let bus = async_nats::connect(nats.url()).await.expect("connect to test NATS");
    let mut events = bus.subscribe("support.events.shop-1").await.unwrap();
    let mut assignments = bus.subscribe("support.assignments.agent-a").await.unwrap();
    let mut c = connect(&router.grpc_url(), None).await;
    c.desk.set_presence(presence("agent-a", &[("orders", 3)], 5)).await.unwrap();
    let mut offers =
        c.desk.subscribe(proto::SubscribeRequest { agent_id: "agent-a".into() }).await.unwrap().into_inner();
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("pb-1", "ORDER", 0, false)).await;
    assert_eq!(next_offer(&mut offers).await.inquiry.unwrap().id, "pb-1");

    let content_type = |m: &async_nats::Message| {
        m.headers.as_ref().and_then(|h| h.get("Content-Type")).map(|v| v.as_str().to_string())
    };
    let message = tokio::time::timeout(WAIT, assignments.next()).await.expect("assignment").expect("subscription");
    assert_eq!(content_type(&message).as_deref(), Some("application/protobuf"));
    let assignment = proto::Assignment::decode(message.payload).expect("a protobuf Assignment");
    assert_eq!((assignment.inquiry.unwrap().id.as_str(), assignment.group.as_str()), ("pb-1", "orders"));
    let message = tokio::time::timeout(WAIT, events.next()).await.expect("event").expect("subscription");
    assert_eq!(content_type(&message).as_deref(), Some("application/protobuf"));
    let event = proto::InquiryEvent::decode(message.payload).expect("a protobuf InquiryEvent");
    assert_eq!((event.inquiry_id.as_str(), event.kind), ("pb-1", Kind::Offered as i32));
}

#[tokio::test]
async fn vip_and_fan_customers_are_offered_before_earlier_ordinary_pre_sales() {
    let w = world("").await;
    let mut c = connect(&w.router.grpc_url(), None).await;
    for i in 0..3 {
        publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json(&format!("plain-{i}"), "PRE_SALES", 0, false))
            .await;
    }
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("vip", "PRE_SALES", 2, false)).await;
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("fan", "PRE_SALES", 0, true)).await;
    wait_waiting(&mut c, "pre_sales", 5).await;

    c.desk.set_presence(presence("pre", &[("pre_sales", 3)], 2)).await.unwrap();
    let mut offers = c.desk.subscribe(proto::SubscribeRequest { agent_id: "pre".into() }).await.unwrap().into_inner();
    let mut first_two =
        vec![next_offer(&mut offers).await.inquiry.unwrap().id, next_offer(&mut offers).await.inquiry.unwrap().id];
    first_two.sort();
    assert_eq!(first_two, ["fan", "vip"], "fan (35) and VIP-2 (32) before plain pre-sales (20)");

    c.desk.set_presence(presence("fan-desk", &[("fans", 3)], 2)).await.unwrap();
    let mut fan_offers =
        c.desk.subscribe(proto::SubscribeRequest { agent_id: "fan-desk".into() }).await.unwrap().into_inner();
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("fan-2", "ORDER", 0, true)).await;
    let offer = next_offer(&mut fan_offers).await;
    assert_eq!((offer.inquiry.unwrap().id.as_str(), offer.group.as_str()), ("fan-2", "fans"));
}

#[tokio::test]
async fn a_refund_never_goes_to_a_pre_sales_agent_and_the_least_occupied_gets_the_next() {
    let w = world("").await;
    let mut c = connect(&w.router.grpc_url(), None).await;
    c.desk.set_presence(presence("pre-only", &[("pre_sales", 5)], 5)).await.unwrap();
    c.desk.set_presence(presence("after-1", &[("after_sales", 3)], 4)).await.unwrap();
    c.desk.set_presence(presence("after-2", &[("after_sales", 3)], 4)).await.unwrap();
    let mut pre = c.desk.subscribe(proto::SubscribeRequest { agent_id: "pre-only".into() }).await.unwrap().into_inner();
    let mut a1 = c.desk.subscribe(proto::SubscribeRequest { agent_id: "after-1".into() }).await.unwrap().into_inner();
    let mut a2 = c.desk.subscribe(proto::SubscribeRequest { agent_id: "after-2".into() }).await.unwrap().into_inner();

    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("refund-1", "AFTER_SALES_REFUND", 0, false)).await;
    let first = tokio::select! {
        o = next_offer(&mut a1) => ("after-1", o),
        o = next_offer(&mut a2) => ("after-2", o),
    };
    assert_eq!(first.1.inquiry.unwrap().id, "refund-1");
    // Equal proficiency, the other one now has the lower occupancy.
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("refund-2", "AFTER_SALES_REFUND", 0, false)).await;
    let second = if first.0 == "after-1" { next_offer(&mut a2).await } else { next_offer(&mut a1).await };
    assert_eq!(second.inquiry.unwrap().id, "refund-2");
    assert_eq!(second.trace.unwrap().rule, proto::decision_trace::Rule::LeastOccupied as i32);
    let quiet = tokio::time::timeout(Duration::from_millis(500), client::after_mark(&mut pre)).await;
    assert!(quiet.is_err(), "the pre-sales agent got an offer: {quiet:?}");
}

#[tokio::test]
async fn transfer_with_a_note_reaches_the_next_agent_and_is_in_the_timeline() {
    let w = world(&client::jwt_auth_section()).await;
    let mut a = connect(&w.router.grpc_url(), Some(token("agent-a", "agent"))).await;
    let mut b = connect(&w.router.grpc_url(), Some(token("agent-b", "agent"))).await;
    a.desk.set_presence(presence("agent-a", &[("pre_sales", 3)], 5)).await.unwrap();
    b.desk.set_presence(presence("agent-b", &[("orders", 3)], 5)).await.unwrap();
    let mut a_offers =
        a.desk.subscribe(proto::SubscribeRequest { agent_id: "agent-a".into() }).await.unwrap().into_inner();
    let mut b_offers =
        b.desk.subscribe(proto::SubscribeRequest { agent_id: "agent-b".into() }).await.unwrap().into_inner();

    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("q-transfer", "PRE_SALES", 0, false)).await;
    next_offer(&mut a_offers).await;
    let action =
        proto::InquiryAction { agent_id: "agent-a".into(), inquiry_id: "q-transfer".into(), reason: String::new() };
    a.desk.accept(action).await.unwrap();

    let note = proto::HandoffNote {
        summary: "wants to change the delivery address".into(),
        attempted: "confirmed the order number".into(),
        customer_expectation: "new address before shipping".into(),
        ..Default::default()
    };
    let request = |target| proto::TransferRequest {
        inquiry_id: "q-transfer".into(),
        target: Some(target),
        note: Some(note.clone()),
    };
    let denied =
        b.handoff.transfer(request(proto::transfer_request::Target::ToGroup("orders".into()))).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let unread = b.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "q-transfer".into() }).await;
    assert_eq!(unread.unwrap_err().code(), tonic::Code::PermissionDenied, "not b's inquiry (yet)");
    a.handoff.transfer(request(proto::transfer_request::Target::ToGroup("orders".into()))).await.unwrap();

    let offer = next_offer(&mut b_offers).await;
    assert_eq!(offer.note.as_ref().unwrap().summary, "wants to change the delivery address");
    assert_eq!(offer.note.as_ref().unwrap().author, "agent-a");
    assert_eq!(offer.trace.as_ref().unwrap().rule, proto::decision_trace::Rule::TransferTarget as i32);

    let detail =
        b.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "q-transfer".into() }).await.unwrap().into_inner();
    let offered: Vec<&proto::InquiryEvent> =
        detail.timeline.iter().filter(|e| e.kind == Kind::Offered as i32).collect();
    assert_eq!(offered.len(), 2);
    assert!(offered.iter().all(|e| e.trace.is_some()));
    assert_eq!((offered[0].agent_id.as_str(), offered[1].agent_id.as_str()), ("agent-a", "agent-b"));
    let transfer =
        detail.timeline.iter().find(|e| e.kind == Kind::Transferred as i32).expect("TRANSFERRED in the timeline");
    assert_eq!(transfer.note.as_ref().unwrap().customer_expectation, "new address before shipping");

    // Declined, it is no more b's to read; a served the customer and still reads it.
    let decline =
        proto::InquiryAction { agent_id: "agent-b".into(), inquiry_id: "q-transfer".into(), reason: String::new() };
    b.desk.decline(decline).await.unwrap();
    let unread = b.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "q-transfer".into() }).await;
    assert_eq!(unread.unwrap_err().code(), tonic::Code::PermissionDenied, "only declined by b");
    assert!(a.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "q-transfer".into() }).await.is_ok());
}

#[tokio::test]
async fn escalation_lands_with_the_supervisors_at_raised_priority() {
    let w = world("").await;
    let mut c = connect(&w.router.grpc_url(), None).await;
    c.desk.set_presence(presence("boss", &[("supervisors", 5)], 3)).await.unwrap();
    let mut boss = c.desk.subscribe(proto::SubscribeRequest { agent_id: "boss".into() }).await.unwrap().into_inner();
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("angry", "ORDER", 0, false)).await;
    wait_waiting(&mut c, "orders", 1).await;
    c.handoff.escalate(proto::EscalateRequest { inquiry_id: "angry".into(), note: None }).await.unwrap();
    let offer = next_offer(&mut boss).await;
    let trace = offer.trace.unwrap();
    assert_eq!(offer.group, "supervisors");
    assert_eq!(trace.rule, proto::decision_trace::Rule::Escalation as i32);
    assert_eq!(trace.band, proto::decision_trace::Band::High as i32);
    assert!(trace.score >= 50, "ORDER 40 + 10 escalation, got {}", trace.score);
}

#[tokio::test]
async fn an_unaccepted_offer_moves_on_and_a_lost_desktop_gets_no_more_offers() {
    let extra = format!("{}\n[agents]\nheartbeat_grace = \"1s\"\n", groups_toml("1s", 10.0));
    let w = world(&extra).await;
    let mut c = connect(&w.router.grpc_url(), None).await;
    c.desk.set_presence(presence("sleepy", &[("orders", 5)], 5)).await.unwrap();
    c.desk.set_presence(presence("awake", &[("orders", 1)], 5)).await.unwrap();
    let mut sleepy =
        c.desk.subscribe(proto::SubscribeRequest { agent_id: "sleepy".into() }).await.unwrap().into_inner();
    let mut awake = c.desk.subscribe(proto::SubscribeRequest { agent_id: "awake".into() }).await.unwrap().into_inner();
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("t-1", "ORDER", 0, false)).await;
    assert_eq!(next_offer(&mut sleepy).await.inquiry.unwrap().id, "t-1");
    let moved = next_offer(&mut awake).await;
    assert_eq!((moved.inquiry.unwrap().id.as_str(), moved.attempt), ("t-1", 2));
    let accept = proto::InquiryAction { agent_id: "awake".into(), inquiry_id: "t-1".into(), reason: String::new() };
    c.desk.accept(accept).await.unwrap();

    // `sleepy` drops its stream: after the grace it is AWAY and offered nothing.
    drop(sleepy);
    eventually("sleepy set AWAY", WAIT, || {
        let mut ops = c.ops.clone();
        async move {
            let q = ops.get_queues(proto::GetQueuesRequest {}).await.ok()?.into_inner();
            let orders = q.groups.into_iter().find(|g| g.group == "orders")?;
            orders.agents.iter().any(|a| a.status == proto::AgentStatus::Away as i32 && a.count == 1).then_some(())
        }
    })
    .await;
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("t-2", "ORDER", 0, false)).await;
    assert_eq!(next_offer(&mut awake).await.inquiry.unwrap().id, "t-2");
}

#[tokio::test]
async fn a_burst_raises_the_level_to_surge_with_reserve_deflection_and_overrides() {
    let extra = format!("{}{}", groups_toml("30s", 1.0), client::jwt_auth_section());
    let w = world(&extra).await;
    let mut admin = connect(&w.router.grpc_url(), Some(token("ops-admin", "admin"))).await;
    let mut agent = connect(&w.router.grpc_url(), Some(token("pre", "agent"))).await;
    let mut deflections = w.bus.subscribe("support.deflections.shop-1").await.unwrap();
    agent.desk.set_presence(presence("pre", &[("pre_sales", 3), ("complaints", 3)], 2)).await.unwrap();
    let mut offers =
        agent.desk.subscribe(proto::SubscribeRequest { agent_id: "pre".into() }).await.unwrap().into_inner();

    // Baseline 1/min: ten orders in a few seconds are 5x and more.
    for i in 0..10 {
        publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json(&format!("burst-{i}"), "ORDER", 0, false))
            .await;
    }
    eventually("router level 2 on /metrics", WAIT, || async {
        let text = w.router.scrape().await;
        (sample(&text, "ticket_router_load_level{scope=\"orders\"}") == Some(2.0)).then_some(())
    })
    .await;
    // pre_sales surges too once its own traffic bursts.
    for i in 0..5 {
        let mut body: serde_json::Value =
            serde_json::from_str(&inquiry_json(&format!("pre-burst-{i}"), "PRE_SALES", 0, false)).unwrap();
        body["bot_attempted"] = true.into();
        publish(&w.bus, "support.inquiries.shop-1".into(), body.to_string()).await;
    }
    // SURGE holds 30 % of the capacity back for HIGH work, in whole slots:
    // one agent with 2 chats, 2 more at SURGE, so 1 slot of 4.
    eventually("pre_sales reserve at SURGE", WAIT, || async {
        let text = w.router.scrape().await;
        (sample(&text, "ticket_router_reserved_capacity_ratio{group=\"pre_sales\"}") == Some(0.25)).then_some(())
    })
    .await;
    let queues = admin.ops.get_queues(proto::GetQueuesRequest {}).await.unwrap().into_inner();
    let pre_sales = queues.groups.iter().find(|g| g.group == "pre_sales").unwrap();
    assert_eq!((pre_sales.reserved_capacity_ratio, pre_sales.reserved_slots), (0.25, 1), "GetQueues says the same");
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("low-1", "PRE_SALES", 0, false)).await;
    let deflected = tokio::time::timeout(WAIT, deflections.next()).await.expect("a deflection").unwrap();
    let msg_id = deflected.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.as_str().to_string());
    assert_eq!(msg_id.as_deref(), Some("low-1.deflect"));
    let deflected: proto::Inquiry = serde_json::from_slice(&deflected.payload).unwrap();
    assert_eq!(deflected.id, "low-1");
    // Kept for a bot that was not listening.
    let js = async_nats::jetstream::new(w.bus.clone());
    let kept = js.get_stream("SUPPORT_DEFLECTIONS").await.expect("the deflection stream exists");
    let stored = kept.get_last_raw_message_by_subject("support.deflections.shop-1").await.unwrap();
    assert_eq!(serde_json::from_slice::<proto::Inquiry>(&stored.payload).unwrap().id, "low-1");
    // A deflection stream lost meanwhile is set up again, and the next
    // deflection is stored in it all the same (with a subscriber listening
    // on the subject, as here, the lost stream shows as an ack timeout).
    js.delete_stream("SUPPORT_DEFLECTIONS").await.unwrap();
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("low-2", "PRE_SALES", 0, false)).await;
    eventually("low-2 stored in the deflection stream set up again", WAIT, || async {
        let kept = js.get_stream("SUPPORT_DEFLECTIONS").await.ok()?;
        let stored = kept.get_last_raw_message_by_subject("support.deflections.shop-1").await.ok()?;
        (serde_json::from_slice::<proto::Inquiry>(&stored.payload).ok()?.id == "low-2").then_some(())
    })
    .await;
    // Stored: the router records it, so a restart publishes it no more
    // (a deflection never confirmed is written `"deflection_stored": false`).
    let bucket = js.get_key_value("ticket_router_state").await.unwrap();
    eventually("low-2's storing recorded", WAIT, || async {
        let record: serde_json::Value = serde_json::from_slice(&bucket.get("inq.low-2").await.ok()??).ok()?;
        (record["state"] == "DEFLECTED" && record.get("deflection_stored").is_none()).then_some(())
    })
    .await;
    // The bot could not help: it hands the inquiry back under its own id,
    // marked, with a message id of its own (JetStream would drop a repeat).
    let back = proto::Inquiry { bot_attempted: true, ..deflected };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "low-1.bot");
    w.bus
        .publish_with_headers("support.inquiries.shop-1", headers, serde_json::to_vec(&back).unwrap().into())
        .await
        .unwrap();
    let detail = eventually("low-1 routed again", WAIT, || async {
        let mut c = admin.handoff.clone();
        let detail = c.get_inquiry(proto::GetInquiryRequest { inquiry_id: "low-1".into() }).await.ok()?.into_inner();
        (detail.state != proto::InquiryState::Deflected as i32).then_some(detail)
    })
    .await;
    let kinds: Vec<i32> = detail.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&(proto::inquiry_event::Kind::Deflected as i32)), "{kinds:?}");
    assert!(kinds.len() >= 2, "the deflection, then where it went: {kinds:?}");

    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("complaint-1", "COMPLAINT", 0, false)).await;
    let mut got_complaint = false;
    for _ in 0..4 {
        if next_offer(&mut offers).await.inquiry.unwrap().id == "complaint-1" {
            got_complaint = true;
            break;
        }
    }
    assert!(got_complaint, "the complaint is offered while LOW work waits");

    let pin = proto::SetLevelOverrideRequest {
        group: "after_sales".into(),
        min_level: proto::LoadLevel::Peak as i32,
        from_ms: 0,
        until_ms: (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 3_600_000)
            as i64,
    };
    let denied = agent.ops.set_level_override(pin.clone()).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    admin.ops.set_level_override(pin).await.unwrap();
    let queues = admin.ops.get_queues(proto::GetQueuesRequest {}).await.unwrap().into_inner();
    let after_sales = queues.groups.iter().find(|g| g.group == "after_sales").unwrap();
    assert_eq!(after_sales.level, proto::LoadLevel::Peak as i32);
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_the_waiting_inquiries() {
    let w = world("").await;
    let mut c = connect(&w.router.grpc_url(), None).await;
    for i in 0..7 {
        publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json(&format!("m-{i}"), "LOGISTICS", 0, false))
            .await;
    }
    publish(&w.bus, "support.inquiries.shop-1".into(), inquiry_json("m-vip", "ORDER", 4, false)).await;
    wait_waiting(&mut c, "orders", 8).await;
    let text = eventually("queue gauges", WAIT, || async {
        let text = w.router.scrape().await;
        let normal = sample(&text, "ticket_router_queue_length{group=\"orders\",band=\"normal\"}")?;
        let high = sample(&text, "ticket_router_queue_length{group=\"orders\",band=\"high\"}")?;
        (normal == 7.0 && high == 1.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&text, "ticket_router_inquiries_total{outcome=\"received\"}"), Some(8.0));
    for name in [
        "ticket_router_queue_oldest_wait_seconds",
        "ticket_router_load_level",
        "ticket_router_routing_duration_seconds_bucket",
        "ticket_router_agents",
        "ticket_router_occupancy_ratio",
        "ticket_router_reserved_capacity_ratio",
        "ticket_router_recommended_agents",
        "ticket_router_deadletter_total",
        "ticket_router_distinct_agents",
        "ticket_router_queue_unservable",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // No offer has timed out, and the series is there at 0 for the panel.
    assert_eq!(sample(&text, "ticket_router_offer_timeouts_total{group=\"orders\"}"), Some(0.0));
    crate::support::promtool::check_metrics(&text);
}
