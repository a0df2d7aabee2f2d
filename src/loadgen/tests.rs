//! Unit tests of the pure parts: the rate curve and its arrivals, the mix,
//! encoding, percentiles, the roster and the status rendering.

use super::agents::roster;
use super::latency::{percentile, summarize, LatencyBook};
use super::status::{render_line, render_table, GroupRow, Snapshot};
use super::traffic::*;
use crate::proto::{self, Category, LoadLevel};
use prost::Message;
use std::time::Duration;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn arrivals(profile: &Profile, poisson: bool, seed: u64) -> Vec<f64> {
    let mut schedule = Schedule::new(profile, poisson, seed);
    std::iter::from_fn(|| schedule.next_arrival()).collect()
}

#[test]
fn the_demo_curve_rises_to_surge_and_comes_back() {
    let demo = Profile::demo();
    let names: Vec<&str> = demo.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["normal", "peak", "surge", "normal"]);
    assert_eq!(demo.total(), secs(280));
    // Sized to the demo groups' baselines, 80/min in all: below 1x, above 2x, above 5x.
    let baseline_per_sec = 80.0 / 60.0;
    let ratios: Vec<f64> = demo.phases.iter().map(|p| p.per_sec / baseline_per_sec).collect();
    assert!(ratios[0] < 1.0 && ratios[3] < 1.0, "{ratios:?}");
    assert!(ratios[1] > 2.2 && ratios[1] < 5.0, "{ratios:?}");
    assert!(ratios[2] > 5.5, "{ratios:?}");
    assert_eq!(demo.phase_at(secs(0)).unwrap().1.name, "normal");
    assert_eq!(demo.phase_at(secs(45)).unwrap().0, 1);
    assert_eq!(demo.phase_at(secs(179)).unwrap().1.name, "surge");
    assert_eq!(demo.phase_at(secs(180)).unwrap().0, 3);
    assert!(demo.phase_at(secs(280)).is_none());
}

#[test]
fn scaling_keeps_the_shape() {
    let short = Profile::demo().scaled_to(secs(140)).rates_times(2.0);
    assert_eq!(short.total(), secs(140));
    assert_eq!(short.phases[2].duration, secs(40));
    assert_eq!(short.phases[2].per_sec, 17.0);
}

#[test]
fn even_arrivals_follow_the_rate_exactly() {
    let profile = Profile { phases: vec![Phase::new("a", secs(2), 10.0), Phase::new("b", secs(1), 100.0)] };
    let times = arrivals(&profile, false, 1);
    assert_eq!(times.iter().filter(|&&t| t < 2.0).count(), 20);
    assert_eq!(times.iter().filter(|&&t| t >= 2.0).count(), 100);
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(times[0], 0.0);
    assert!((times[20] - 2.0).abs() < 1e-9, "the second phase starts on time");
}

#[test]
fn poisson_arrivals_are_seeded_and_average_the_rate() {
    let profile = Profile { phases: vec![Phase::new("calm", secs(600), 2.0), Phase::new("off", secs(10), 0.0)] };
    let a = arrivals(&profile, true, 42);
    assert_eq!(a, arrivals(&profile, true, 42));
    assert_ne!(a, arrivals(&profile, true, 43));
    let count = a.len() as f64;
    assert!((count - 1200.0).abs() < 120.0, "{count}");
    assert!(a.iter().all(|&t| t < 600.0), "nothing arrives in a zero-rate phase");
}

#[test]
fn the_mix_looks_like_a_shop() {
    let mut maker = InquiryMaker::new("t", Mix::Shop, 7);
    let n = 20_000;
    let inquiries: Vec<proto::Inquiry> = (0..n).map(|_| maker.next(1_000)).collect();
    let share = |f: &dyn Fn(&proto::Inquiry) -> bool| inquiries.iter().filter(|i| f(i)).count() as f64 / n as f64;
    let pre_sales = share(&|i| i.category() == Category::PreSales);
    let vip = share(&|i| i.customer.as_ref().unwrap().vip_tier > 0);
    let fans = share(&|i| i.customer.as_ref().unwrap().is_fan);
    let bot = share(&|i| i.bot_attempted);
    assert!((pre_sales - 0.38).abs() < 0.02, "{pre_sales}");
    assert!((vip - 0.10).abs() < 0.015, "{vip}");
    assert!((fans - FAN_SHARE).abs() < 0.01, "{fans}");
    assert!(bot > 0.05 && bot < 0.15, "{bot}");
    assert!(inquiries.iter().all(|i| !i.bot_attempted || matches!(i.category(), Category::PreSales | Category::Other)));
    assert_eq!(inquiries[0].id, "t-1");
    assert_eq!(inquiries[n - 1].id, format!("t-{n}"));
    let again: Vec<proto::Inquiry> = {
        let mut m = InquiryMaker::new("t", Mix::Shop, 7);
        (0..100).map(|_| m.next(1_000)).collect()
    };
    assert_eq!(again[..], inquiries[..100]);
}

#[test]
fn the_benchmark_mix_is_never_deflected() {
    let mut maker = InquiryMaker::new("b", Mix::NoDeflection, 3);
    for _ in 0..2_000 {
        let i = maker.next(0);
        if matches!(i.category(), Category::PreSales | Category::Other) {
            assert!(i.bot_attempted);
        }
    }
}

#[test]
fn payloads_carry_the_id_and_decode_in_both_formats() {
    let inquiry = InquiryMaker::new("x", Mix::Shop, 1).next(1_762_790_400_000);
    let (headers, body) = encode(Format::Json, &inquiry);
    assert_eq!(headers.get("Nats-Msg-Id").unwrap().as_str(), "x-1");
    assert_eq!(headers.get("Content-Type").unwrap().as_str(), "application/json");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["id"], "x-1");
    assert!(json["category"].is_string(), "enum names, not numbers: {json}");
    let (headers, body) = encode(Format::Protobuf, &inquiry);
    assert_eq!(headers.get("Content-Type").unwrap().as_str(), "application/protobuf");
    assert_eq!(proto::Inquiry::decode(body).unwrap(), inquiry);
}

#[test]
fn percentiles_are_nearest_rank() {
    let sorted: Vec<u64> = (1..=1000).collect();
    assert_eq!(percentile(&sorted, 0.5), Some(500));
    assert_eq!(percentile(&sorted, 0.99), Some(990));
    assert_eq!(percentile(&sorted, 0.999), Some(999));
    assert_eq!(percentile(&sorted, 1.0), Some(1000));
    assert_eq!(percentile(&sorted, 0.0), Some(1));
    assert_eq!(percentile(&[7], 0.99), Some(7));
    assert_eq!(percentile(&[], 0.5), None);
    let s = summarize(vec![3_000, 1_000, 2_000, 4_000]).unwrap();
    assert_eq!((s.samples, s.p50_ms, s.p99_ms, s.max_ms, s.mean_ms), (4, 2.0, 4.0, 4.0, 2.5));
    assert!(summarize(Vec::new()).is_none());
}

#[test]
fn the_latency_book_counts_each_first_offer_once() {
    let book = LatencyBook::new("run-r5", 10);
    book.mark("run-r5-3");
    book.observe("run-r5-3");
    book.observe("run-r5-3");
    book.observe("run-r5-4");
    book.observe("other-1");
    book.mark("run-r5-99");
    assert_eq!(book.seen(), 1);
    assert_eq!(book.take().len(), 1);
}

#[test]
fn the_roster_staffs_every_group_by_share() {
    let groups: Vec<String> =
        ["pre_sales", "orders", "after_sales", "complaints", "fans", "supervisors"].map(String::from).to_vec();
    let agents = roster(&groups, 32, 5, "lg");
    assert_eq!(agents.len(), 32);
    let count = |g: &str| agents.iter().filter(|a| a.groups[0].0 == g).count();
    assert!(groups.iter().all(|g| count(g) >= 1));
    assert!(count("pre_sales") > count("complaints") && count("orders") > count("supervisors"));
    assert_eq!(agents[0].id, "lg-pre_sales-01");
    assert!(agents.iter().all(|a| (1..=5).contains(&a.groups[0].1) && a.max_concurrent == 5));
    assert_eq!(roster(&groups, 2, 5, "x").len(), 6, "at least one agent per group");
}

#[test]
fn the_status_shows_levels_queues_and_totals() {
    let snapshot = Snapshot {
        title: "loadgen".into(),
        elapsed: secs(125),
        total: secs(280),
        phase: Some(("surge".into(), 8.5)),
        router_level: LoadLevel::Surge,
        groups: vec![GroupRow {
            group: "pre_sales".into(),
            level: LoadLevel::Surge,
            arrivals_per_min: 210.0,
            waiting: [1, 12, 3],
            oldest_wait_s: 14.0,
            reserve_ratio: 0.3,
            reserved_slots: 16,
            occupancy: 0.71,
            available: 8,
            recommended: 11,
        }],
        totals: [100, 90, 80, 70, 9, 0, 0, 32],
        metrics_url: Some("http://127.0.0.1:9464/metrics".into()),
        ..Snapshot::default()
    };
    let table = render_table(&snapshot, false).join("\n");
    assert!(table.contains("02:05 / 04:40"), "{table}");
    assert!(table.contains("phase surge 8.5/s"), "{table}");
    assert!(table.contains("pre_sales    SURGE"), "{table}");
    assert!(table.contains("1/12/3") && table.contains("30% (16)"), "{table}");
    assert!(table.contains("deflected 9") && table.contains("errors 0"), "{table}");
    assert!(table.contains("http://127.0.0.1:9464/metrics"), "{table}");
    let line = render_line(&snapshot);
    assert!(line.starts_with("[02:05] surge 8.5/s router=SURGE | pre_sales=SURGE q16 14s"), "{line}");
}
