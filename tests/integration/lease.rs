//! One router per state bucket: a second one started beside it waits, takes
//! over when the first dies (after the lease lapses) and restores what the
//! first recorded; a router that stops cleanly hands over at once.

use crate::durability::config;
use crate::support::client::{connect, inquiry_json, publish};
use crate::support::eventually;
use crate::support::nats_server::NatsServer;
use crate::support::router::{sample, RouterProcess};
use std::time::Duration;
use ticket_router::adapters::persistence::{frame, StateStore};
use ticket_router::config::NatsSettings;
use ticket_router::proto;

const SETTLE: Duration = Duration::from_secs(60);

async fn waiting_in_orders(router: &RouterProcess) -> f64 {
    let scrape = router.scrape().await;
    let bands = ["high", "normal", "low"];
    bands
        .iter()
        .filter_map(|b| sample(&scrape, &format!("ticket_router_queue_length{{group=\"orders\",band=\"{b}\"}}")))
        .sum()
}

#[tokio::test]
async fn a_second_router_on_one_bucket_waits_and_takes_over_when_the_first_is_gone() {
    let nats = NatsServer::start();
    let config = config(&nats);
    let mut first = RouterProcess::start(&config);
    let mut second = RouterProcess::launch(&config, &[]);
    // The first renews its lease (3 s in tests) all along: the second must
    // not start deciding beside it, and says why it waits.
    assert!(!second.ready_within(Duration::from_secs(5)), "a second router became ready beside the first");
    let waits = || async { second.process.log_text().contains("another router uses this state bucket").then_some(()) };
    eventually("the second router says why it waits", SETTLE, waits).await;

    let bus = async_nats::connect(nats.url()).await.unwrap();
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("lease-1", "ORDER", 0, false)).await;
    eventually("the first router queued it", SETTLE, || async {
        (waiting_in_orders(&first).await == 1.0).then_some(())
    })
    .await;

    first.kill();
    assert!(
        second.ready_within(SETTLE),
        "the second router did not take over; its log:\n{}",
        second.process.log_text()
    );
    let second = second.process;
    assert!(second.log_text().contains("took over the state bucket"), "{}", second.log_text());
    let mut c = connect(&second.grpc_url(), None).await;
    let detail = c.handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: "lease-1".into() }).await;
    let state = detail.expect("restored from what the first recorded").into_inner().state;
    assert_eq!(state, proto::InquiryState::Waiting as i32);

    // A clean stop releases the lease: the next router starts without
    // waiting for it to lapse.
    let mut third = RouterProcess::launch(&config, &[]);
    assert!(!third.ready_within(Duration::from_secs(3)), "a third router became ready beside the second");
    let mut second = second;
    assert!(second.terminate().is_some_and(|status| status.success()));
    assert!(third.ready_within(SETTLE), "the third router did not start; its log:\n{}", third.process.log_text());
    assert!(!third.process.log_text().contains("took over"), "{}", third.process.log_text());
    assert_eq!(waiting_in_orders(&third.process).await, 1.0);
}

#[tokio::test]
async fn a_paused_router_whose_lease_was_taken_and_released_meanwhile_exits_when_it_resumes() {
    let nats = NatsServer::start();
    let config = config(&nats);
    let mut first = RouterProcess::start(&config);
    first.signal("STOP");
    let mut second = RouterProcess::launch(&config, &[]);
    assert!(
        second.ready_within(SETTLE),
        "the second router did not take over; its log:\n{}",
        second.process.log_text()
    );
    let mut second = second.process;
    assert!(second.terminate().is_some_and(|status| status.success()), "a clean stop releases the lease");
    // The lease is free again, but not the first router's to take back: the
    // second decided meanwhile, and the first's state is stale.
    first.signal("CONT");
    let status = first.exit_within(SETTLE);
    assert_eq!(status.and_then(|s| s.code()), Some(3), "its log:\n{}", first.log_text());
    assert!(first.log_text().contains("another router took over the state bucket"), "{}", first.log_text());
}

#[tokio::test]
async fn a_lease_bucket_lost_under_a_working_router_is_written_again_not_handed_to_the_waiting_one() {
    let nats = NatsServer::start();
    let config = config(&nats);
    let first = RouterProcess::start(&config);
    let mut second = RouterProcess::launch(&config, &[]);
    let waits = || async { second.process.log_text().contains("another router uses this state bucket").then_some(()) };
    eventually("the second router waits", SETTLE, waits).await;
    let bus = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(bus.clone());
    js.delete_key_value("ticket_router_state_lease").await.expect("delete the lease bucket");
    let written = || async {
        first.log_text().contains("the router lease was lost from the server; written again").then_some(())
    };
    eventually("the first router writes its lease again", SETTLE, written).await;
    assert!(!second.ready_within(Duration::from_secs(5)), "the second router took a lease that is still held");
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("lease-2", "ORDER", 0, false)).await;
    eventually("the first router still routes", SETTLE, || async {
        (waiting_in_orders(&first).await == 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_nats_restart_shorter_than_the_lease_does_not_hand_it_to_the_waiting_router() {
    let mut nats = NatsServer::start();
    let config = config(&nats);
    let first = RouterProcess::start(&config);
    let mut second = RouterProcess::launch(&config, &[]);
    let waits = || async { second.process.log_text().contains("another router uses this state bucket").then_some(()) };
    eventually("the second router waits", SETTLE, waits).await;
    std::thread::sleep(Duration::from_secs(1));
    nats.restart();
    // Neither could renew or watch while NATS was away: the holder renews
    // once it is back, and the waiter counts silence only from then.
    assert!(!second.ready_within(Duration::from_secs(12)), "the second router took over after a NATS restart");
    let bus = async_nats::connect(nats.url()).await.unwrap();
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("lease-3", "ORDER", 0, false)).await;
    eventually("the first router still routes", SETTLE, || async {
        (waiting_in_orders(&first).await == 1.0).then_some(())
    })
    .await;
}

/// Starts a router and has it record one inquiry; `foreign` then writes
/// what another router would (one that took over, or the late write of one
/// cut off from NATS), or takes messages away, and a second inquiry comes:
/// the router must stop (saying `said`) rather than write after it, and,
/// started again, know the inquiries `kept`.
async fn stops_on_a_foreign_write(
    foreign: impl AsyncFnOnce(async_nats::jetstream::Context, String),
    said: &str,
    kept: &[&str],
) {
    let nats = NatsServer::start();
    let config = config(&nats);
    let mut first = RouterProcess::start(&config);
    let bus = async_nats::connect(nats.url()).await.unwrap();
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("fence-1", "ORDER", 0, false)).await;
    eventually("the first inquiry waits", SETTLE, || async { (waiting_in_orders(&first).await == 1.0).then_some(()) })
        .await;
    foreign(async_nats::jetstream::new(bus.clone()), nats.url()).await;
    publish(&bus, "support.inquiries.shop-1".into(), inquiry_json("fence-2", "ORDER", 0, false)).await;
    let status = first.exit_within(SETTLE);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "its log:\n{}", first.log_text());
    assert!(first.log_text().contains(said), "{}", first.log_text());

    // Started again, it restores what it recorded (and the server kept), and
    // NATS delivers again what it had not recorded.
    let second = RouterProcess::start(&config);
    let c = connect(&second.grpc_url(), None).await;
    for id in kept {
        let known = || {
            let mut handoff = c.handoff.clone();
            async move { handoff.get_inquiry(proto::GetInquiryRequest { inquiry_id: id.to_string() }).await.ok() }
        };
        eventually(&format!("{id} known again"), SETTLE, known).await;
    }
}

#[tokio::test]
async fn a_router_stops_when_another_writes_its_journal_and_what_it_had_not_recorded_comes_again() {
    // The delete of a record nobody has.
    let write = async |js, url| {
        let settings = NatsSettings { url, state_bucket: "ticket_router_state".into(), ..NatsSettings::default() };
        let other = StateStore::open(js, &settings).await.unwrap();
        other.append_at_end(&frame::encode(&[("inq.nobody".to_string(), None)], 1 << 20)).await.unwrap();
    };
    stops_on_a_foreign_write(write, "another router has written the journal", &["fence-1", "fence-2"]).await;
}

#[tokio::test]
async fn a_router_stops_when_another_writes_its_state_bucket() {
    // A value of a key nobody reads, once the first inquiry is checkpointed.
    let write = async |js: async_nats::jetstream::Context, _| {
        let bucket = js.get_key_value("ticket_router_state").await.unwrap();
        let checkpointed = || async { bucket.get("checkpoint").await.unwrap().map(|_| ()) };
        eventually("a checkpoint", SETTLE, checkpointed).await;
        bucket.put("nobody", "{}".into()).await.unwrap();
    };
    stops_on_a_foreign_write(write, "another router has written the state bucket", &["fence-1", "fence-2"]).await;
}

#[tokio::test]
async fn a_router_stops_when_its_journal_went_back() {
    // As a server that restarted without its last messages on disk: the
    // journal is there, but ends before where the router left it.
    let write = async |js: async_nats::jetstream::Context, _| {
        let journal = js.get_stream("JOURNAL_ticket_router_state").await.unwrap();
        let config = journal.cached_info().config.clone();
        js.delete_stream("JOURNAL_ticket_router_state").await.unwrap();
        js.create_stream(async_nats::jetstream::stream::Config { first_sequence: None, ..config }).await.unwrap();
    };
    // The first inquiry may be lost with the journal, unless checkpointed.
    stops_on_a_foreign_write(write, "the server lost messages", &["fence-2"]).await;
}
