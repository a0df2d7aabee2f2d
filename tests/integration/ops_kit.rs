//! The operations kit in `deploy/`: the alert rules pass promtool and their
//! unit tests, the Kubernetes configuration is one the router accepts, and every
//! query of the Grafana dashboard returns data from a real Prometheus scraping
//! a real router that has seen traffic.

use crate::support::client::{connect, inquiry_json, next_offer, presence, publish, Clients};
use crate::support::nats_server::NatsServer;
use crate::support::prometheus::{promtool, Prometheus};
use crate::support::router::{groups_toml, sample, test_config, RouterProcess};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ticket_router::proto;

const WAIT: Duration = Duration::from_secs(60);

/// The metric names of SPEC section 8.
const METRICS: [&str; 13] = [
    "ticket_router_queue_length",
    "ticket_router_queue_oldest_wait_seconds",
    "ticket_router_load_level",
    "ticket_router_inquiries_total",
    "ticket_router_wait_seconds",
    "ticket_router_routing_duration_seconds",
    "ticket_router_agents",
    "ticket_router_occupancy_ratio",
    "ticket_router_reserved_capacity_ratio",
    "ticket_router_recommended_agents",
    "ticket_router_handoffs_total",
    "ticket_router_offer_timeouts_total",
    "ticket_router_deadletter_total",
];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("read deploy/{path}: {e}"))
}

/// The alert names in alerts.yml, in file order.
fn alert_names() -> Vec<String> {
    read("prometheus/alerts.yml")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:").map(|n| n.trim().to_string()))
        .collect()
}

#[test]
fn alert_rules_and_prometheus_config_pass_promtool_and_the_rule_unit_tests() {
    let dir = deploy("prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts_test.yml"],
    ] {
        let (ok, output) = promtool(&dir, args);
        assert!(ok, "promtool {}:\n{output}", args.join(" "));
    }
    let names = alert_names();
    assert_eq!(names.len(), 8, "{names:?}");
    let tests = read("prometheus/alerts_test.yml");
    for name in &names {
        assert!(tests.contains(&format!("alertname: {name}")), "alerts_test.yml has no test of {name}");
    }
}

/// The TOML inside deploy/k8s/configmap.yaml (the block under `ticket-router.toml: |`).
fn configmap_toml() -> String {
    let text = read("k8s/configmap.yaml");
    let (_, block) = text.split_once("ticket-router.toml: |\n").expect("configmap.yaml has a ticket-router.toml key");
    block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kubernetes_config_map_is_a_jwt_configuration_completed_by_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticket-router.toml");
    std::fs::write(&file, configmap_toml()).unwrap();
    let check = |secret: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ticket-router"));
        command.arg("check-config").arg(&file);
        command.env_remove("TICKET_ROUTER_GRPC_AUTH_HS256_SECRET");
        if let Some(secret) = secret {
            command.env("TICKET_ROUTER_GRPC_AUTH_HS256_SECRET", secret);
        }
        let out = command.output().expect("run check-config");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, output) = check(Some("a-secret-from-the-kubernetes-secret-48-bytes-long"));
    assert!(ok && output.contains("gRPC auth jwt"), "{output}");
    let (ok, output) = check(None);
    assert!(!ok && output.contains("grpc.auth"), "without the Secret the file alone must not pass: {output}");

    let deployment = read("k8s/deployment.yaml");
    let secret = read("k8s/secret.example.yaml");
    assert!(deployment.contains("name: TICKET_ROUTER_GRPC_AUTH_HS256_SECRET"));
    assert!(deployment.contains("name: ticket-router-jwt") && secret.contains("name: ticket-router-jwt"));
    assert!(deployment.contains("key: hs256-secret") && secret.contains("hs256-secret:"));
}

/// Every panel of the dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read("grafana/ticket-router.json")).expect("the dashboard is JSON")
}

/// (panel title, expression) of every query target, Grafana's variables
/// replaced as Grafana would with the "All" group and a 1 min rate interval.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard).into_iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        let targets = panel["targets"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.trim().is_empty(), "panel {title:?} has an empty query");
            let mut expr = expr.to_string();
            for (variable, value) in [
                ("${__rate_interval}", "1m"),
                ("$__rate_interval", "1m"),
                ("${__interval}", "1m"),
                ("$__interval", "1m"),
                ("${__range}", "1h"),
                ("$__range", "1h"),
                ("${group}", ".*"),
                ("$group", ".*"),
                ("${instance}", ".*"),
                ("$instance", ".*"),
            ] {
                expr = expr.replace(variable, value);
            }
            assert!(!expr.contains('$'), "panel {title:?}: a Grafana variable the test does not know: {expr}");
            queries.push((title.clone(), expr));
        }
    }
    queries
}

#[test]
fn the_dashboard_charts_every_metric_with_well_formed_panels() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "ticket-router");
    let all = panels(&dashboard);
    let mut ids: Vec<i64> = all.iter().map(|p| p["id"].as_i64().expect("panel id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "panel ids are unique");
    for panel in all.iter().filter(|p| p["type"] != "row") {
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_i64().unwrap(), grid["w"].as_i64().unwrap());
        assert!(x >= 0 && w > 0 && x + w <= 24, "{} does not fit the 24-column grid", panel["title"]);
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} uses the data source variable", panel["title"]);
    }
    let queries = panel_queries(&dashboard);
    for metric in METRICS {
        assert!(queries.iter().any(|(_, q)| q.contains(metric)), "no panel shows {metric}");
    }
    let titles: Vec<&str> = all.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Queue length per group and band",
        "Oldest wait per group",
        "Load level timeline",
        "Occupancy and reserve",
        "Waits until accepted (heatmap)",
        "Deflections to the bot",
        "Handoffs",
        "Staffing advice vs available agents",
        "Inquiries by outcome",
        "Dead letters by reason",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted:?} in {titles:?}");
    }
    let heatmap = all.iter().find(|p| p["type"] == "heatmap").expect("a heatmap panel");
    assert_eq!(heatmap["targets"][0]["format"], "heatmap");
}

/// Polls an instant query until it returns at least one series.
async fn has_data(prometheus: &Prometheus, what: &str, expr: &str) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = prometheus.query(expr).await;
        match &answer {
            Ok(series) if !series.is_empty() => return series.clone(),
            _ if Instant::now() > deadline => panic!(
                "{what}: no data within {WAIT:?}\n  query: {expr}\n  last answer: {answer:?}\n  prometheus log:\n{}",
                prometheus.log_text()
            ),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Polls `/metrics` until `name_and_labels` is at least `min`.
async fn router_counts(router: &RouterProcess, name_and_labels: &str, min: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = router.scrape().await;
        if sample(&text, name_and_labels).is_some_and(|v| v >= min) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{name_and_labels} never reached {min}; /metrics:\n{text}\nrouter log:\n{}", router.log_text());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn action(agent: &str, inquiry: &str) -> proto::InquiryAction {
    proto::InquiryAction { agent_id: agent.into(), inquiry_id: inquiry.into(), reason: String::new() }
}

async fn subscribe(c: &mut Clients, agent: &str) -> tonic::Streaming<proto::Assignment> {
    c.desk.subscribe(proto::SubscribeRequest { agent_id: agent.into() }).await.expect("Subscribe").into_inner()
}

/// deploy/prometheus/prometheus.yml as shipped, pointed at the test router and
/// scraping and evaluating every second.
fn prometheus_config(metrics_addr: &str) -> String {
    let mut config = read("prometheus/prometheus.yml");
    for (from, to) in [
        ("scrape_interval: 15s", "scrape_interval: 1s".to_string()),
        ("evaluation_interval: 15s", "evaluation_interval: 1s".to_string()),
        ("\"router:9464\"", format!("\"{metrics_addr}\"")),
    ] {
        assert!(config.contains(from), "prometheus.yml no longer has {from}; update this test");
        config = config.replace(from, &to);
    }
    config
}

/// Traffic that gives every panel something to show: accepted chats (waits,
/// occupancy), a transfer (handoffs), an unanswered offer (timeouts), a bad
/// message (dead letters), a pinned SURGE with a deflected pre-sales question,
/// and work left waiting (queues, oldest wait).
async fn drive_traffic(router: &RouterProcess, bus: &async_nats::Client) -> Vec<tonic::Streaming<proto::Assignment>> {
    let subject = || "support.inquiries.shop-ops".to_string();
    let mut c = connect(&router.grpc_url(), None).await;
    c.desk.set_presence(presence("ops-orders", &[("orders", 3)], 5)).await.expect("SetPresence");
    c.desk.set_presence(presence("ops-after", &[("after_sales", 3)], 5)).await.expect("SetPresence");
    c.desk.set_presence(presence("ops-slow", &[("complaints", 3)], 1)).await.expect("SetPresence");
    let mut orders = subscribe(&mut c, "ops-orders").await;
    let mut after = subscribe(&mut c, "ops-after").await;
    let slow = subscribe(&mut c, "ops-slow").await;

    for id in ["ops-order-1", "ops-order-2"] {
        publish(bus, subject(), inquiry_json(id, "ORDER", 0, false)).await;
        let offer = next_offer(&mut orders).await;
        let id = offer.inquiry.expect("offer carries the inquiry").id;
        c.desk.accept(action("ops-orders", &id)).await.expect("Accept");
    }
    let transfer = proto::TransferRequest {
        inquiry_id: "ops-order-1".into(),
        target: Some(proto::transfer_request::Target::ToGroup("after_sales".into())),
        note: Some(proto::HandoffNote {
            summary: "wants a refund for a broken kettle".into(),
            attempted: "checked the order".into(),
            customer_expectation: "a refund today".into(),
            ..Default::default()
        }),
    };
    c.handoff.transfer(transfer).await.expect("Transfer");
    let offer = next_offer(&mut after).await;
    assert_eq!(offer.inquiry.expect("inquiry").id, "ops-order-1");
    c.desk.accept(action("ops-after", "ops-order-1")).await.expect("Accept after transfer");
    c.desk.complete(action("ops-orders", "ops-order-2")).await.expect("Complete");

    // ops-slow never answers: the offer times out (accept_timeout 2 s).
    publish(bus, subject(), inquiry_json("ops-complaint-1", "COMPLAINT", 0, false)).await;
    router_counts(router, "ticket_router_offer_timeouts_total{group=\"complaints\"}", 1.0).await;

    publish(bus, subject(), "this is not an inquiry".to_string()).await;
    router_counts(router, "ticket_router_inquiries_total{outcome=\"rejected\"}", 1.0).await;

    // auth none: every Ops call is an admin's.
    let until_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 + 3_600_000;
    let pin = proto::SetLevelOverrideRequest {
        group: String::new(),
        min_level: proto::LoadLevel::Surge as i32,
        from_ms: 0,
        until_ms,
    };
    c.ops.set_level_override(pin).await.expect("SetLevelOverride");
    router_counts(router, "ticket_router_load_level{scope=\"router\"}", 2.0).await;
    publish(bus, subject(), inquiry_json("ops-presales-low", "PRE_SALES", 0, false)).await;
    router_counts(router, "ticket_router_inquiries_total{outcome=\"deflected\"}", 1.0).await;

    // A VIP's pre-sales question is not deflected; nobody serves pre_sales, so it waits.
    publish(bus, subject(), inquiry_json("ops-presales-vip", "PRE_SALES", 2, false)).await;
    router_counts(router, "ticket_router_queue_length{group=\"pre_sales\",band=\"normal\"}", 1.0).await;
    vec![orders, after, slow]
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_real_prometheus_with_the_alert_rules_loaded() {
    let nats = NatsServer::start();
    let router = RouterProcess::start(&test_config(&nats.url(), "support", &groups_toml("2s", 10.0)));
    let alerts = read("prometheus/alerts.yml");
    let prometheus = Prometheus::start(&prometheus_config(&router.metrics_addr), &[("alerts.yml", &alerts)]).await;
    // Scraped before any traffic, so the counters' first increase is a rate.
    has_data(&prometheus, "the router scraped", "up{job=\"ticket-router\"} == 1").await;
    has_data(&prometheus, "the counters scraped at zero", "ticket_router_deadletter_total").await;

    let bus = async_nats::connect(nats.url()).await.expect("connect to test NATS");
    let _desktops = drive_traffic(&router, &bus).await;

    let queries = panel_queries(&dashboard());
    for (title, expr) in &queries {
        has_data(&prometheus, &format!("panel {title:?}"), expr).await;
    }

    // The rules loaded, and every one evaluates without error against real series.
    let names = alert_names();
    let deadline = Instant::now() + WAIT;
    loop {
        let data = prometheus.api("/api/v1/rules").await.expect("GET /api/v1/rules");
        let rules: Vec<&Value> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let mut loaded: Vec<String> = rules.iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect();
        loaded.sort();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(loaded, expected, "the rules Prometheus loaded");
        if rules.iter().all(|r| r["health"] == "ok") {
            break;
        }
        assert!(
            rules.iter().all(|r| r["health"] != "err"),
            "a rule fails to evaluate: {}",
            serde_json::to_string_pretty(&data).unwrap()
        );
        assert!(Instant::now() < deadline, "rules not all evaluated within {WAIT:?}: {data}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The dead letter and the pinned SURGE make their alerts active (pending
    // for their `for:`, or firing): the rules match the router's real labels.
    let deadline = Instant::now() + WAIT;
    loop {
        let data = prometheus.api("/api/v1/alerts").await.expect("GET /api/v1/alerts");
        let active: Vec<&str> = data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "pending" || a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str())
            .collect();
        if active.contains(&"TicketRouterDeadLetters") && active.contains(&"TicketRouterSurge") {
            assert!(!active.contains(&"TicketRouterDown"), "the router is scraped, yet: {active:?}");
            assert!(!active.contains(&"TicketRouterNotServing"), "the router consumes NATS, yet: {active:?}");
            break;
        }
        assert!(Instant::now() < deadline, "dead-letter and SURGE alerts not active within {WAIT:?}: {data}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("{} dashboard queries returned data; {} alert rules loaded", queries.len(), names.len());
}
