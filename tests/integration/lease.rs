//! One router per state bucket: a second one started beside it waits, takes
//! over when the first dies (after the lease lapses) and restores what the
//! first recorded; a router that stops cleanly hands over at once.

use crate::durability::config;
use crate::support::client::{connect, inquiry_json, publish};
use crate::support::eventually;
use crate::support::nats_server::NatsServer;
use crate::support::router::{sample, RouterProcess};
use std::time::Duration;
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
    // The first renews its lease (2 s in tests) all along: the second must
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
