//! `ticket-router loadgen` against a real nats-server and router: a few
//! seconds of steady traffic in both encodings with simulated agents, then
//! the router's own metrics show the inquiries received and assigned. No
//! timing assertions: waiting is by condition.

use crate::support::eventually;
use crate::support::nats_server::NatsServer;
use crate::support::router::{sample, test_config, DumpLogOnPanic, RouterProcess};
use std::process::{Command, Output};
use std::time::Duration;

/// Runs the binary's `loadgen` (steady, low rate, short chats) and returns its output.
fn loadgen(nats: &str, grpc: &str, format: &str) -> Output {
    // Chats of 2 s: several are in hand when the run ends, and must be finished.
    let args = ["--profile", "steady", "--rate", "5", "--duration", "3s", "--agents", "8", "--handle-time", "2s"];
    Command::new(env!("CARGO_BIN_EXE_ticket-router"))
        .arg("loadgen")
        .args(args)
        .args(["--format", format, "--nats", nats, "--grpc", grpc, "--prefix", "lg", "--seed", "9"])
        .output()
        .expect("run ticket-router loadgen")
}

/// The number after `label ` in loadgen's summary.
fn summary_count(stdout: &str, label: &str) -> u64 {
    let line = stdout.lines().find(|l| l.trim_start().starts_with("published")).unwrap_or_default();
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == label {
            return words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        }
    }
    0
}

#[tokio::test(flavor = "multi_thread")]
async fn loadgen_traffic_is_offered_and_accepted_by_its_agents() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&test_config(&nats.url(), "lg", ""));
    let _dump = DumpLogOnPanic(router.log_path());
    let (nats_url, grpc_url) = (nats.url(), router.grpc_url());
    for format in ["json", "protobuf"] {
        let (n, g) = (nats_url.clone(), grpc_url.clone());
        let output = tokio::task::spawn_blocking(move || loadgen(&n, &g, format)).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "loadgen ({format}) failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("loadgen finished"), "{stdout}");
        assert!(stdout.contains("errors 0"), "{stdout}");
        assert!(summary_count(&stdout, "published") > 0, "{stdout}");
        assert!(summary_count(&stdout, "offered") > 0, "{stdout}");
        assert!(summary_count(&stdout, "accepted") > 0, "{stdout}");
        // The run finished the work it had in hand: nothing is left waiting
        // in the router for agents who have signed off.
        let waiting = eventually("the router's queues empty after the run", Duration::from_secs(20), || async {
            let scrape = router.scrape().await;
            let lengths = scrape.lines().filter(|l| l.starts_with("ticket_router_queue_length{"));
            let waiting: f64 = lengths.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
            (waiting == 0.0).then_some(waiting)
        })
        .await;
        assert_eq!(waiting, 0.0, "{stdout}");
    }
    let assigned = eventually("inquiries received and assigned", Duration::from_secs(20), || async {
        let scrape = router.scrape().await;
        let received = sample(&scrape, "ticket_router_inquiries_total{outcome=\"received\"}").unwrap_or(0.0);
        let assigned = sample(&scrape, "ticket_router_inquiries_total{outcome=\"assigned\"}").unwrap_or(0.0);
        (received > 0.0 && assigned > 0.0).then_some(assigned)
    })
    .await;
    assert!(assigned >= 1.0);
}
