//! Nothing lost: crashes, broker restarts, lost streams and graceful
//! shutdown, against real `nats-server` processes and the real binary.

use crate::support::agents::{AgentPool, Ledger};
use crate::support::client::{connect, inquiry_json, publish};
use crate::support::eventually;
use crate::support::nats_server::NatsServer;
use crate::support::router::{groups_toml, sample, test_config, RouterProcess};
use std::collections::BTreeMap;
use std::time::Duration;
use ticket_router::proto;

const SETTLE: Duration = Duration::from_secs(60);

pub(crate) fn config(nats: &NatsServer) -> String {
    let extra = format!("{}\n[agents]\nheartbeat_grace = \"10s\"\n", groups_toml("5s", 10.0));
    test_config(&nats.url(), "support", &extra)
}

/// Publishes `ids` through JetStream (each acknowledged by the server, so
/// none is lost by the test itself), retrying while NATS is away.
async fn publish_all(js: &async_nats::jetstream::Context, ids: &[String]) {
    for id in ids {
        let body = inquiry_json(id, if id.ends_with('7') { "AFTER_SALES_REFUND" } else { "ORDER" }, 0, false);
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            if let Ok(ack) = js.publish_with_headers("support.inquiries.shop-1", headers, body.clone().into()).await {
                if ack.await.is_ok() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every id is COMPLETED, and no inquiry was accepted by two agents.
async fn assert_all_completed(router: &RouterProcess, ids: &[String], ledger: &Ledger) {
    let mut c = connect(&router.grpc_url(), None).await;
    let mut states: BTreeMap<i32, usize> = BTreeMap::new();
    for id in ids {
        let detail = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: id.clone() }).await;
        let state = detail.unwrap_or_else(|e| panic!("inquiry {id} is missing: {e}")).into_inner().state;
        *states.entry(state).or_default() += 1;
    }
    assert_eq!(states.get(&(proto::InquiryState::Completed as i32)), Some(&ids.len()), "states: {states:?}");
    assert_eq!(ledger.double_owners(), Vec::<String>::new(), "accepted by two agents");
}

async fn wait_all_completed(router: &RouterProcess, ids: &[String]) {
    let _guard = crate::support::router::DumpLogOnPanic(router.log_path());
    let deadline = std::time::Instant::now() + SETTLE;
    loop {
        let mut c = connect(&router.grpc_url(), None).await;
        let mut open = Vec::new();
        for id in ids {
            let detail = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: id.clone() }).await;
            match detail {
                Ok(d) if d.get_ref().state == proto::InquiryState::Completed as i32 => {}
                Ok(d) => open.push((id.clone(), Some(d.into_inner()))),
                Err(_) => open.push((id.clone(), None)),
            }
        }
        if open.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            let sample: Vec<String> = open
                .iter()
                .take(5)
                .map(|(id, d)| match d {
                    None => format!("{id}: unknown"),
                    Some(d) => format!(
                        "{id}: state {} owner {:?} timeline {:?}",
                        d.state,
                        d.owner_agent_id,
                        d.timeline.iter().map(|e| (e.kind, e.agent_id.clone(), e.at_ms)).collect::<Vec<_>>()
                    ),
                })
                .collect();
            panic!("{} of {} inquiries not completed, e.g.\n{}", open.len(), ids.len(), sample.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
async fn a_router_killed_mid_stream_loses_nothing_and_offers_nothing_twice() {
    let nats = NatsServer::start();
    let mut router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    let ledger = Ledger::default();
    let pool = AgentPool::start(router.grpc_url(), &[("orders", 12), ("after_sales", 4)], ledger.clone()).await;

    let all = ids("crash", 5_000);
    publish_all(&js, &all[..2_500]).await;
    eventually("work under way", SETTLE, || async { (ledger.accepted() > 200).then_some(()) }).await;
    router.kill();
    publish_all(&js, &all[2_500..]).await;
    let router = RouterProcess::start(&config(&nats));
    pool.reconnect(router.grpc_url()).await;

    wait_all_completed(&router, &all).await;
    assert_all_completed(&router, &all, &ledger).await;
    let scrape = router.scrape().await;
    let waiting: f64 = ["high", "normal", "low"]
        .iter()
        .filter_map(|b| sample(&scrape, &format!("ticket_router_queue_length{{group=\"orders\",band=\"{b}\"}}")))
        .sum();
    assert_eq!(waiting, 0.0, "/metrics agrees that nothing waits");
    pool.stop().await;
}

#[tokio::test]
async fn a_broker_restart_during_traffic_loses_nothing() {
    let mut nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    let ledger = Ledger::default();
    let pool = AgentPool::start(router.grpc_url(), &[("orders", 8), ("after_sales", 3)], ledger.clone()).await;

    let all = ids("outage", 1_500);
    publish_all(&js, &all[..700]).await;
    nats.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    nats.restart();
    publish_all(&js, &all[700..]).await;

    wait_all_completed(&router, &all).await;
    assert_all_completed(&router, &all, &ledger).await;
    // The agents accept every offer they see at once: an offer can only have
    // timed out if its timer ran while the outage kept it from them.
    let scrape = router.scrape().await;
    let timeouts: f64 = scrape
        .lines()
        .filter(|l| l.starts_with("ticket_router_offer_timeouts_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(timeouts, 0.0, "offer timers ran while nothing could be delivered");
    pool.stop().await;
}

#[tokio::test]
async fn streams_lost_by_the_server_are_created_again_and_routing_goes_on() {
    let nats = NatsServer::start();
    let mut router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    let ledger = Ledger::default();
    let pool = AgentPool::start(router.grpc_url(), &[("orders", 4), ("after_sales", 2)], ledger.clone()).await;
    let before = ids("before", 20);
    publish_all(&js, &before).await;
    // No one serves complaints here: this one waits through it all.
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("complaint-1", "COMPLAINT", 0, false)).await;
    wait_all_completed(&router, &before).await;

    // As after a server that lost its store: inbound stream, journal and bucket gone.
    for stream in ["SUPPORT_INQUIRIES", "JOURNAL_ticket_router_state", "KV_ticket_router_state"] {
        js.delete_stream(stream).await.unwrap();
    }
    // Acknowledged only once the router has created its inbound stream again.
    let after = ids("after", 20);
    publish_all(&js, &after).await;
    wait_all_completed(&router, &after).await;
    assert!(js.get_stream("JOURNAL_ticket_router_state").await.is_ok(), "the journal is back");
    pool.stop().await;

    // What the lost bucket held was recorded again at once: a crash now,
    // whether or not a checkpoint has refilled the bucket yet, still finds
    // the waiting complaint.
    router.kill();
    let router = RouterProcess::start(&config(&nats));
    let mut c = connect(&router.grpc_url(), None).await;
    let waiting = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "complaint-1".into() }).await;
    assert_eq!(waiting.expect("known after the restart").into_inner().state, proto::InquiryState::Waiting as i32);
}

#[tokio::test]
async fn a_lost_dead_letter_stream_is_created_again_and_nothing_is_lost() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    js.delete_stream("SUPPORT_DEADLETTER").await.unwrap();
    // Someone watching dead letters: the missing stream then shows as an
    // unanswered publish, not as no responders.
    let _watching = bus.subscribe("support.deadletter").await.unwrap();
    publish(&bus, "support.inquiries.shop-1".into(), "not json".into()).await;
    // Left unacknowledged until the stream is back, then delivered again and kept.
    let stored = eventually("the dead letter kept", SETTLE, || async {
        let stream = js.get_stream("SUPPORT_DEADLETTER").await.ok()?;
        stream.get_raw_message(1).await.ok()
    })
    .await;
    assert_eq!(&stored.payload[..], b"not json");
    assert!(router.log_text().contains("the dead-letter stream is gone"));
}

#[tokio::test]
async fn sigterm_under_load_exits_cleanly_and_a_restart_goes_on() {
    let nats = NatsServer::start();
    let mut router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    let ledger = Ledger::default();
    let pool = AgentPool::start(router.grpc_url(), &[("orders", 8), ("after_sales", 3)], ledger.clone()).await;
    let all = ids("term", 1_500);
    let publisher = {
        let (js, first) = (js.clone(), all[..1_000].to_vec());
        tokio::spawn(async move { publish_all(&js, &first).await })
    };
    // A desktop on break, subscribed: told to reconnect when the router stops.
    let mut watcher = connect(&router.grpc_url(), None).await;
    let away = proto::SetPresenceRequest {
        status: proto::AgentStatus::Break as i32,
        ..crate::support::client::presence("watcher", &[("orders", 1)], 1)
    };
    watcher.desk.set_presence(away).await.unwrap();
    let request = proto::SubscribeRequest { agent_id: "watcher".into() };
    let mut stream = watcher.desk.subscribe(request).await.unwrap().into_inner();
    eventually("work under way", SETTLE, || async { (ledger.accepted() > 100).then_some(()) }).await;
    let status = router.terminate().expect("exit status");
    assert!(status.success(), "SIGTERM exit: {status:?}\n{}", router.log_text());
    let end = crate::support::client::after_mark(&mut stream).await.expect_err("the stream ends with a status, not OK");
    assert_eq!((end.code(), end.message().contains("stopping")), (tonic::Code::Unavailable, true), "{end:?}");
    publisher.await.unwrap();
    publish_all(&js, &all[1_000..]).await;
    let router = RouterProcess::start(&config(&nats));
    pool.reconnect(router.grpc_url()).await;
    wait_all_completed(&router, &all).await;
    assert_all_completed(&router, &all, &ledger).await;
    pool.stop().await;
}

/// Measures recovery of 100,000 waiting inquiries (run on purpose:
/// `cargo test --release --test integration recovery -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "a measurement, not a check: takes minutes"]
async fn recovery_of_100k_waiting_inquiries() {
    let nats = NatsServer::start();
    let mut router = RouterProcess::start(&config(&nats));
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    let n = 100_000;
    let mut acks = std::collections::VecDeque::new();
    for i in 0..n {
        let id = format!("rec-{i}");
        let body = inquiry_json(&id, "ORDER", i % 4, i % 10 == 0);
        acks.push_back(js.publish("support.inquiries.shop-1", body.into()).await.unwrap());
        if acks.len() > 1_000 {
            acks.pop_front().unwrap().await.unwrap();
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let mut c = connect(&router.grpc_url(), None).await;
    eventually("all waiting", Duration::from_secs(600), || {
        let mut ops = c.ops.clone();
        async move {
            let q = ops.get_queues(proto::GetQueuesRequest {}).await.ok()?.into_inner();
            let waiting: u32 = q.groups.iter().map(|g| g.waiting_high + g.waiting_normal + g.waiting_low).sum();
            (waiting == n).then_some(())
        }
    })
    .await;
    router.kill();
    let started = std::time::Instant::now();
    let router = RouterProcess::start(&config(&nats));
    let ready = started.elapsed();
    c = connect(&router.grpc_url(), None).await;
    let q = c.ops.get_queues(proto::GetQueuesRequest {}).await.unwrap().into_inner();
    let waiting: u32 = q.groups.iter().map(|g| g.waiting_high + g.waiting_normal + g.waiting_low).sum();
    let log = std::fs::read_to_string(router.log_path()).unwrap();
    let line = log.lines().find(|l| l.contains("restored the routing state")).unwrap_or_default().to_string();
    println!("recovery: {waiting} waiting after restart; process start to ready {ready:?}; {line}");
    assert_eq!(waiting, n, "none lost");
}

#[tokio::test]
async fn what_a_restart_replayed_from_the_journal_outlives_the_next_checkpoint() {
    use ticket_router::adapters::persistence::{frame, StateStore};
    let nats = NatsServer::start();
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    // No one serves complaints: this one waits, recorded once, never touched again.
    let mut router = RouterProcess::start(&config(&nats));
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("complaint-1", "COMPLAINT", 0, false)).await;
    let bucket = js.get_key_value("ticket_router_state").await.unwrap();
    let record = eventually("the complaint checkpointed", SETTLE, || async {
        bucket.get("inq.complaint-1").await.ok().flatten()
    })
    .await;
    router.terminate();

    // As after a crash before the checkpoint: the record is in the journal only.
    let kv = js.get_stream("KV_ticket_router_state").await.unwrap();
    kv.purge().filter("$KV.ticket_router_state.inq.complaint-1").await.unwrap();
    let settings = ticket_router::config::NatsSettings { url: nats.url(), ..Default::default() };
    let store = StateStore::open(js.clone(), &settings).await.unwrap();
    store.append_at_end(&frame::encode(&[("inq.complaint-1".to_string(), Some(record))], 1 << 20)).await.unwrap();

    // The next run restores it from the journal, decides other things, and
    // checkpoints them, which purges the journal.
    let mut router = RouterProcess::start(&config(&nats));
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("order-2", "ORDER", 0, false)).await;
    eventually("a checkpoint after the restart emptied the journal", SETTLE, || async {
        let order = bucket.get("inq.order-2").await.ok().flatten();
        let info = js.get_stream("JOURNAL_ticket_router_state").await.ok()?.info().await.ok()?.state.messages;
        (order.is_some() && info == 0).then_some(())
    })
    .await;
    router.kill();

    let router = RouterProcess::start(&config(&nats));
    let mut c = connect(&router.grpc_url(), None).await;
    let waiting = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "complaint-1".into() }).await;
    assert_eq!(
        waiting.expect("known after the second restart").into_inner().state,
        proto::InquiryState::Waiting as i32
    );
}

#[tokio::test]
async fn a_hung_broker_turns_health_not_serving_until_decisions_are_recorded_again() {
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest};
    let nats = NatsServer::start();
    let router = RouterProcess::start(&config(&nats));
    let channel = tonic::transport::Channel::from_shared(router.grpc_url()).unwrap().connect().await.unwrap();
    let health = HealthClient::new(channel);
    let status = |want: ServingStatus| {
        let mut health = health.clone();
        async move {
            let reply = health.check(HealthCheckRequest { service: String::new() }).await.ok()?;
            (reply.into_inner().status == want as i32).then_some(())
        }
    };
    eventually("SERVING", SETTLE, || status(ServingStatus::Serving)).await;

    // The server hangs with its connections open; a decision waits for its record.
    nats.freeze(true);
    let mut c = connect(&router.grpc_url(), None).await;
    let waiting =
        tokio::spawn(
            async move { c.desk.set_presence(crate::support::client::presence("a1", &[("orders", 3)], 3)).await },
        );
    eventually("NOT_SERVING while nothing is recorded", SETTLE, || status(ServingStatus::NotServing)).await;
    // The scrape still answers: the gauge is how Prometheus can tell.
    assert_eq!(sample(&router.scrape().await, "ticket_router_serving"), Some(0.0));
    nats.freeze(false);
    waiting.await.unwrap().expect("answered once recorded");
    eventually("SERVING again", SETTLE, || status(ServingStatus::Serving)).await;
    assert_eq!(sample(&router.scrape().await, "ticket_router_serving"), Some(1.0));
}

#[tokio::test]
async fn while_nats_has_never_answered_scrapes_say_not_serving_and_sigterm_stops_at_once() {
    // Nothing listens on port 1: the router keeps trying to reach NATS.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("router.toml");
    std::fs::write(&file, test_config("nats://127.0.0.1:1", "support", "")).unwrap();
    let log = dir.path().join("router.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ticket-router"))
        .args(["serve", "--config"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let metrics_addr = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = text.lines().find(|l| l.contains("starting"))?.to_string();
        Some(line.split_whitespace().find_map(|w| w.strip_prefix("metrics="))?.to_string())
    };
    let metrics_addr = eventually("the starting line", SETTLE, || async { metrics_addr() }).await;
    // Prometheus can tell a router that waits for NATS from one that is gone.
    let scrape = tokio::time::timeout(SETTLE, RouterProcess::scrape_at(&metrics_addr)).await;
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    // Stopping gives in-flight work 10 s and then exits with an error; with
    // nothing in flight it must not come to that.
    let mut status = None;
    for _ in 0..80 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let scrape = scrape.expect("/metrics answers while NATS is away");
    assert_eq!(sample(&scrape, "ticket_router_serving"), Some(0.0), "scrape:\n{scrape}");
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}; log:\n{text}");
}

#[tokio::test]
async fn a_customer_who_waited_in_the_stream_while_the_router_was_down_counts_that_wait() {
    let nats = NatsServer::start();
    let mut router = RouterProcess::start(&config(&nats));
    assert!(router.terminate().expect("exit status").success());
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    publish_all(&js, &["down-1".to_string()]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let router = RouterProcess::start(&config(&nats));
    let mut c = connect(&router.grpc_url(), None).await;
    let ops = c.ops.clone();
    let oldest = eventually("the inquiry is routed", SETTLE, || {
        let mut ops = ops.clone();
        async move {
            let queues = ops.get_queues(proto::GetQueuesRequest {}).await.ok()?.into_inner();
            let orders = queues.groups.into_iter().find(|g| g.group == "orders")?;
            (orders.waiting_normal + orders.waiting_high + orders.waiting_low > 0).then_some(orders.oldest_wait_seconds)
        }
    })
    .await;
    assert!(oldest >= 3.0, "waited since the stream stored it, 3 s before the start: {oldest}");
    let detail = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "down-1".into() }).await.unwrap();
    assert_eq!(detail.into_inner().state, proto::InquiryState::Waiting as i32);
}
