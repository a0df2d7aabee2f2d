//! Hostile input: every kind of bad message is dead-lettered with its
//! reason, and counted, while good traffic goes on.

use crate::durability::config;
use crate::support::client::{connect, inquiry_json, publish};
use crate::support::nats_server::NatsServer;
use crate::support::router::{sample, RouterProcess};
use futures::StreamExt;
use std::collections::HashSet;
use std::time::Duration;
use ticket_router::proto;

#[tokio::test]
async fn every_bad_input_is_dead_lettered_with_its_reason_while_good_traffic_flows() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let mut dead = bus.subscribe("support.deadletter").await.unwrap();
    let mut c = connect(&router.grpc_url(), None).await;
    c.desk.set_presence(crate::support::client::presence("a", &[("orders", 3)], 50)).await.unwrap();

    let long_id = "x".repeat(129);
    let future = format!(r#"{{"id":"f1","category":"ORDER","created_at_ms":{}}}"#, 4_102_444_800_000u64);
    let big = format!(r#"{{"id":"big","category":"ORDER","subject":"{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        ("support.inquiries.shop-1", "not json at all".into(), None, "not_decodable"),
        ("support.inquiries.shop-1", "\u{8}\u{1}garbage".into(), Some("application/protobuf"), "not_decodable"),
        ("support.inquiries.shop-1", String::new(), None, "empty"),
        ("support.inquiries.shop-1", big, None, "oversized"),
        ("support.inquiries.shop-1", r#"{"category":"ORDER"}"#.into(), None, "missing_id"),
        ("support.inquiries.shop-1", r#"{"id":"bad id!","category":"ORDER"}"#.into(), None, "invalid_id"),
        ("support.inquiries.shop-1", format!(r#"{{"id":"{long_id}","category":"ORDER"}}"#), None, "invalid_id"),
        ("support.inquiries.shop-1", r#"{"id":"u1","category":"BANANAS"}"#.into(), None, "unknown_enum"),
        (
            "support.inquiries.shop-1",
            r#"{"id":"v1","category":"ORDER","customer":{"vip_tier":9}}"#.into(),
            None,
            "out_of_range",
        ),
        (
            "support.inquiries.shop-1",
            r#"{"id":"m1","category":"ORDER","order_value_cents":-5}"#.into(),
            None,
            "negative_money",
        ),
        ("support.inquiries.shop-1", future, None, "future_timestamp"),
        ("support.cancellations.shop-1", r#"{"inquiry_id":"never-seen"}"#.into(), None, "unknown_inquiry"),
        ("support.inquiries", r#"{"id":"ns","category":"ORDER"}"#.into(), None, "bad_subject"),
    ];
    let mut good = Vec::new();
    for (i, (subject, body, content_type, _)) in cases.iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert("Content-Type", *ct);
        }
        bus.publish_with_headers(subject.to_string(), headers, body.clone().into()).await.unwrap();
        let id = format!("good-{i}");
        publish(&bus, "support.inquiries.shop-1".into(), inquiry_json(&id, "ORDER", 0, false)).await;
        good.push(id);
    }
    // Only application/protobuf selects protobuf; any other type is read as JSON.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "text/plain");
    bus.publish_with_headers("support.inquiries.shop-1", headers, inquiry_json("ct", "ORDER", 0, false).into())
        .await
        .unwrap();
    good.push("ct".to_string());
    let mut reasons = Vec::new();
    let mut originals = Vec::new();
    while reasons.len() < cases.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), dead.next()).await.expect("dead letters").unwrap();
        let header = message.headers.as_ref().and_then(|h| h.get("Ticket-Router-Error")).expect("error header");
        reasons.push(header.as_str().split(':').next().unwrap().to_string());
        originals.push(message.payload.len());
    }
    let expected: Vec<String> = cases.iter().map(|c| c.3.to_string()).collect();
    assert_eq!(reasons, expected);
    let sizes: Vec<usize> = cases.iter().map(|c| c.1.len()).collect();
    assert_eq!(originals, sizes, "dead letters carry the original bytes");
    // Kept for whoever was not listening: every one is stored, reason and all.
    let js = async_nats::jetstream::new(bus.clone());
    let mut stored = js.get_stream("SUPPORT_DEADLETTER").await.expect("the dead-letter stream exists");
    assert_eq!(stored.info().await.unwrap().state.messages, cases.len() as u64);
    let mut origins = std::collections::HashSet::new();
    for (seq, case) in (1..).zip(&cases) {
        let message = stored.get_raw_message(seq).await.unwrap();
        let header = message.headers.get("Ticket-Router-Error").expect("error header").as_str().to_string();
        assert!(header.starts_with(&format!("{}:", case.3)), "{header}");
        assert_eq!(message.payload.len(), case.1.len());
        // The original's place, as the id that makes a second copy a duplicate.
        let origin = message.headers.get("Nats-Msg-Id").expect("message id").as_str().to_string();
        let parts: Vec<&str> = origin.split('.').collect();
        assert!(parts.len() == 3 && parts[0] == "SUPPORT_INQUIRIES", "{origin}");
        assert!(parts[1..].iter().all(|p| p.parse::<u128>().is_ok()), "sequence and time stored: {origin}");
        assert!(origins.insert(origin), "one id per original");
    }
    for id in &good {
        let state = c
            .handoff
            .get_inquiry(proto::GetInquiryRequest { inquiry_id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .state;
        assert_eq!(state, proto::InquiryState::Offered as i32, "{id}");
    }
    let scrape = router.scrape().await;
    for reason in ["not_decodable", "invalid_id"] {
        assert_eq!(
            sample(&scrape, &format!("ticket_router_deadletter_total{{reason=\"{reason}\"}}")),
            Some(2.0),
            "{reason}"
        );
    }
    assert_eq!(sample(&scrape, "ticket_router_deadletter_total{reason=\"empty\"}"), Some(1.0));
    // Every case but the cancellation was an inquiry the router rejected.
    let rejected = sample(&scrape, "ticket_router_inquiries_total{outcome=\"rejected\"}");
    assert_eq!(rejected, Some(cases.len() as f64 - 1.0));
    let unique: HashSet<&String> = reasons.iter().collect();
    assert!(unique.len() >= 11, "the cases cover most reasons");
}

#[tokio::test]
async fn a_message_at_the_servers_size_limit_is_dead_lettered_cut_short_not_redelivered_forever() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let mut dead = bus.subscribe("support.deadletter").await.unwrap();
    let mut c = connect(&router.grpc_url(), None).await;
    c.desk.set_presence(crate::support::client::presence("a", &[("orders", 3)], 5)).await.unwrap();
    // Just under the server's limit: the dead letter's own headers would take it over.
    let limit = bus.server_info().max_payload;
    let body = vec![b'x'; limit - 64];
    bus.publish("support.inquiries.shop-1", body.clone().into()).await.unwrap();
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("after", "ORDER", 0, false)).await;
    let message = tokio::time::timeout(Duration::from_secs(30), dead.next()).await.expect("a dead letter").unwrap();
    let headers = message.headers.expect("headers");
    assert!(headers.get("Ticket-Router-Error").unwrap().as_str().starts_with("oversized:"));
    let original = headers.get("Ticket-Router-Truncated").expect("says it was cut").as_str().to_string();
    assert_eq!(original, body.len().to_string());
    assert_eq!(message.payload.len(), 64 * 1024);
    // The message after it is routed: the consumer did not stall on it.
    let state = crate::support::eventually("the next inquiry is offered", Duration::from_secs(30), || {
        let mut handoff = c.handoff.clone();
        async move {
            let reply = handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "after".into() }).await.ok()?;
            (reply.into_inner().state == proto::InquiryState::Offered as i32).then_some(())
        }
    });
    state.await;
}

#[tokio::test]
async fn a_message_the_dead_letter_stream_refuses_is_counted_and_kept_until_it_can_be_stored() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    // The router set the stream up; ops then made it refuse anything but tiny messages.
    let mut limited = js.get_stream("SUPPORT_DEADLETTER").await.unwrap().info().await.unwrap().config.clone();
    limited.max_message_size = 8;
    js.update_stream(limited.clone()).await.unwrap();
    bus.publish("support.inquiries.shop-1", "{this is not json}".into()).await.unwrap();
    let failures = |scrape: &str| sample(scrape, "ticket_router_deadletter_failures_total");
    crate::support::eventually("the refused dead letter is counted", Duration::from_secs(20), || {
        let router = &router;
        async move { (failures(&router.scrape().await)? >= 1.0).then_some(()) }
    })
    .await;
    assert_eq!(sample(&router.scrape().await, "ticket_router_deadletter_total{reason=\"not_decodable\"}"), Some(0.0));
    // Not acknowledged: once the stream takes it again, the next delivery is stored.
    limited.max_message_size = -1;
    js.update_stream(limited).await.unwrap();
    crate::support::eventually("the message is dead-lettered at its next delivery", Duration::from_secs(60), || {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream("SUPPORT_DEADLETTER").await.ok()?;
            (stream.info().await.ok()?.state.messages == 1).then_some(())
        }
    })
    .await;
    crate::support::eventually("the stored dead letter is counted", Duration::from_secs(10), || {
        let router = &router;
        async move {
            let stored = sample(&router.scrape().await, "ticket_router_deadletter_total{reason=\"not_decodable\"}");
            (stored == Some(1.0)).then_some(())
        }
    })
    .await;
}
