//! One test per validation rule: a good configuration with one thing broken must
//! report exactly that path.

use super::*;
use crate::config::Secret;
use crate::core::settings::GroupSettings;
use crate::core::types::Category;
use std::time::Duration;

/// A configuration that validates: the defaults with authentication off.
fn good() -> Config {
    let mut config = Config::default();
    config.grpc.auth.mode = "none".into();
    config
}

fn paths_after(change: impl FnOnce(&mut Config)) -> Vec<String> {
    let mut config = good();
    change(&mut config);
    validate(&config).into_iter().map(|p| p.path).collect()
}

fn assert_only(change: impl FnOnce(&mut Config), expected: &[&str]) {
    assert_eq!(paths_after(change), expected);
}

fn assert_fine(change: impl FnOnce(&mut Config)) {
    assert_eq!(paths_after(change), Vec::<String>::new());
}

#[test]
fn good_configuration_validates() {
    assert_eq!(validate(&good()), []);
}

#[test]
fn group_ids_must_be_unique_and_not_empty() {
    assert_only(|c| c.groups[3].id = "orders".into(), &["groups[3].id"]);
    let mut config = good();
    let mut copy = config.groups[5].clone();
    copy.categories.clear();
    config.groups.push(copy);
    let problems = validate(&config);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "groups[6].id: \"supervisors\" is already the id of groups[5]; group ids must be unique"
    );
    assert_only(|c| c.groups.push(GroupSettings { id: String::new(), ..GroupSettings::default() }), &["groups[6].id"]);
}

#[test]
fn overflow_must_name_another_existing_group() {
    assert_only(|c| c.groups[1].overflow = vec!["aftersales".into()], &["groups[1].overflow[0]"]);
    assert_only(|c| c.groups[1].overflow = vec!["orders".into()], &["groups[1].overflow[0]"]);
    assert_only(
        |c| c.groups[1].overflow = vec!["after_sales".into(), "after_sales".into()],
        &["groups[1].overflow[1]"],
    );
    let problems = validate(&{
        let mut c = good();
        c.groups[1].overflow = vec!["orders".into()];
        c
    });
    assert!(problems[0].message.contains("overflows to itself"), "{problems:?}");
}

#[test]
fn every_category_has_exactly_one_group() {
    assert_only(|c| c.groups[3].categories.clear(), &["groups"]);
    let problems = validate(&{
        let mut c = good();
        c.groups[3].categories.clear();
        c
    });
    assert_eq!(problems[0].message, "no group serves category COMPLAINT; add it to the categories of one [[groups]]");
    assert_only(|c| c.groups[4].categories.push(Category::Order), &["groups[4].categories[0]"]);
    assert_only(|c| c.groups[0].categories.push(Category::Other), &["groups[0].categories[2]"]);
}

#[test]
fn dedicated_and_escalation_groups_must_exist() {
    assert_only(|c| c.dedicated.group = "vip".into(), &["dedicated.group"]);
    assert_fine(|c| c.dedicated.group = String::new());
    assert_only(|c| c.dedicated.min_vip_tier = 6, &["dedicated.min_vip_tier"]);
    assert_only(|c| c.escalation.group = "leads".into(), &["escalation.group"]);
    assert_only(|c| c.escalation.group = String::new(), &["escalation.group"]);
}

#[test]
fn group_numbers_must_be_usable() {
    assert_only(|c| c.groups[0].accept_timeout = Duration::ZERO, &["groups[0].accept_timeout"]);
    assert_only(|c| c.groups[3].id = "router".into(), &["groups[3].id"]);
    assert_only(|c| c.levels.surge_playbook.extra_concurrent = u32::MAX, &["levels.surge_playbook.extra_concurrent"]);
    assert_only(|c| c.priority.high_band_vip_tier = 6, &["priority.high_band_vip_tier"]);
    assert_only(|c| c.groups[0].baseline_per_min = 0.0, &["groups[0].baseline_per_min"]);
    assert_only(|c| c.groups[0].baseline_per_min = -1.0, &["groups[0].baseline_per_min"]);
    assert_only(|c| c.groups[0].baseline_per_min = f64::NAN, &["groups[0].baseline_per_min"]);
    assert_only(|c| c.groups[0].service_level = 0.0, &["groups[0].service_level"]);
    assert_only(|c| c.groups[0].service_level = 1.5, &["groups[0].service_level"]);
    assert_fine(|c| c.groups[0].service_level = 1.0);
    assert_only(|c| c.groups[2].answer_within = Duration::ZERO, &["groups[2].answer_within"]);
    assert_only(|c| c.groups[2].handle_time = Duration::ZERO, &["groups[2].handle_time"]);
}

#[test]
fn playbook_shares_stay_in_range() {
    assert_only(|c| c.levels.surge_playbook.reserve_ratio = 1.0, &["levels.surge_playbook.reserve_ratio"]);
    assert_only(|c| c.levels.normal_playbook.reserve_ratio = -0.1, &["levels.normal_playbook.reserve_ratio"]);
    assert_fine(|c| c.levels.normal_playbook.reserve_ratio = 0.0);
    assert_fine(|c| c.levels.peak_playbook.reserve_ratio = 0.99);
    assert_only(|c| c.levels.peak_playbook.standby_reserve = -0.25, &["levels.peak_playbook.standby_reserve"]);
    assert_only(|c| c.levels.peak_playbook.standby_reserve = 1.5, &["levels.peak_playbook.standby_reserve"]);
    assert_fine(|c| c.levels.peak_playbook.standby_reserve = 1.0);
}

#[test]
fn surge_thresholds_are_at_least_peak_ones() {
    assert_only(|c| c.levels.surge.queue_length = 19, &["levels.surge.queue_length"]);
    assert_fine(|c| c.levels.surge.queue_length = 20);
    assert_only(|c| c.levels.surge.arrival_ratio = 1.5, &["levels.surge.arrival_ratio"]);
    assert_only(|c| c.levels.surge.oldest_wait = Duration::from_secs(30), &["levels.surge.oldest_wait"]);
    assert_only(|c| c.levels.surge.occupancy = 0.9, &["levels.surge.occupancy"]);
    let problems = validate(&{
        let mut c = good();
        c.levels.surge.oldest_wait = Duration::from_secs(30);
        c
    });
    assert!(problems[0].message.starts_with("is below levels.peak.oldest_wait (1m)"), "{problems:?}");
}

#[test]
fn thresholds_and_windows_must_be_positive() {
    assert_only(|c| c.levels.peak.arrival_ratio = 0.0, &["levels.peak.arrival_ratio"]);
    assert_only(|c| c.levels.peak.arrival_ratio = -2.0, &["levels.peak.arrival_ratio"]);
    assert_only(|c| c.levels.peak.queue_length = 0, &["levels.peak.queue_length"]);
    assert_only(|c| c.levels.peak.oldest_wait = Duration::ZERO, &["levels.peak.oldest_wait"]);
    assert_only(|c| c.levels.peak.occupancy = 0.0, &["levels.peak.occupancy"]);
    assert_only(|c| c.levels.window = Duration::from_millis(500), &["levels.window"]);
    assert_fine(|c| c.levels.window = Duration::from_secs(1));
    assert_only(|c| c.levels.cooldown = Duration::ZERO, &["levels.cooldown"]);
}

#[test]
fn agent_and_fatigue_limits() {
    assert_only(|c| c.agents.max_concurrent = 0, &["agents.max_concurrent"]);
    assert_only(|c| c.agents.max_concurrent = 51, &["agents.max_concurrent"]);
    assert_fine(|c| c.agents.max_concurrent = 50);
    assert_only(|c| c.agents.timeouts_before_away = 0, &["agents.timeouts_before_away"]);
    assert_only(|c| c.fatigue.min_break = Duration::ZERO, &["fatigue.min_break"]);
    assert_only(|c| c.fatigue.max_continuous = Duration::ZERO, &["fatigue.max_continuous"]);
}

#[test]
fn priority_scores_stay_in_range() {
    assert_only(|c| c.priority.base.COMPLAINT = 1001, &["priority.base.COMPLAINT"]);
    assert_only(|c| c.priority.fan_bonus = -1001, &["priority.fan_bonus"]);
    assert_only(|c| c.priority.high_band_score = i32::MAX, &["priority.high_band_score"]);
    assert_fine(|c| {
        c.priority.per_vip_tier = 1000;
        c.priority.escalation_bonus = -1000;
    });
}

#[test]
fn listen_addresses_must_be_socket_addresses() {
    for bad in ["0.0.0.0", "9464", "localhost:9464", "0.0.0.0:99999", ""] {
        assert_only(|c| c.metrics.listen = bad.into(), &["metrics.listen"]);
    }
    assert_only(|c| c.grpc.listen = "0.0.0.0:grpc".into(), &["grpc.listen"]);
    assert_fine(|c| c.grpc.listen = "[::]:50051".into());
    assert_only(|c| c.metrics.listen = "127.0.0.1:50051".into(), &["metrics.listen"]);
    assert_fine(|c| {
        c.grpc.listen = "127.0.0.1:0".into();
        c.metrics.listen = "127.0.0.1:0".into();
    });
}

#[test]
fn nats_names_follow_nats_rules() {
    for bad in ["", "sup port", "support.*", "support.>", ".support", "support.", "acme..support"] {
        assert_only(|c| c.nats.prefix = bad.into(), &["nats.prefix"]);
    }
    assert_fine(|c| {
        c.nats.prefix = "acme.support".into();
        c.nats.stream = "ACME_INQUIRIES".into();
        c.nats.consumer = "router-acme".into();
        c.nats.state_bucket = "acme_state".into();
        c.nats.deadletter_stream = "ACME_DEADLETTER".into();
        c.nats.deflection_stream = "ACME_DEFLECTIONS".into();
    });
    // Another tenant's router on the same server would share the defaults.
    assert_only(
        |c| {
            c.nats.prefix = "acme.support".into();
            c.nats.consumer = "router-acme".into();
        },
        &["nats.stream", "nats.state_bucket", "nats.deadletter_stream", "nats.deflection_stream"],
    );
    assert_only(|c| c.nats.deadletter_stream = "dead letters".into(), &["nats.deadletter_stream"]);
    assert_only(|c| c.nats.stream = "SUPPORT.INQUIRIES".into(), &["nats.stream"]);
    assert_only(|c| c.nats.consumer = "ticket router".into(), &["nats.consumer"]);
    assert_only(|c| c.nats.state_bucket = String::new(), &["nats.state_bucket"]);
    assert_only(|c| c.nats.state_bucket = "state>".into(), &["nats.state_bucket"]);
    assert_fine(|c| c.nats.stream = "support-inquiries_2".into());
}

#[test]
fn nats_connection_settings() {
    assert_only(|c| c.nats.url = String::new(), &["nats.url"]);
    assert_only(|c| c.nats.url = "http://nats:4222".into(), &["nats.url"]);
    assert_fine(|c| c.nats.url = "nats://a:4222, tls://b:4222".into());
    // What the client would refuse at start, without showing the password.
    assert_only(|c| c.nats.url = "nats://127.0.0.1:4222x".into(), &["nats.url"]);
    let mut config = crate::config::Config::default();
    config.nats.url = "nats://router:hunter2@nats:99999".into();
    let problems = super::validate(&config);
    assert!(
        problems.iter().any(|p| p.path == "nats.url" && p.message.contains("nats://***@nats:99999")),
        "{problems:?}"
    );
    assert!(!format!("{problems:?}").contains("hunter2"));
    assert_fine(|c| c.nats.url = "nats://router:s3cr/etPW@nats:4222".into());
    assert_only(
        |c| {
            c.nats.url = "nats://router:pw@nats:4222".into();
            c.nats.token = Some(crate::config::Secret::new("t0ken"));
        },
        &["nats"],
    );
    assert_only(
        |c| {
            c.nats.token = Some(Secret::new("t"));
            c.nats.credentials_file = Some("router.creds".into());
        },
        &["nats"],
    );
}

#[test]
fn tls_needs_certificate_and_key() {
    assert_only(|c| c.grpc.tls.cert_file = Some("grpc.pem".into()), &["grpc.tls.key_file"]);
    assert_only(|c| c.grpc.tls.key_file = Some("grpc.key".into()), &["grpc.tls.cert_file"]);
    assert_only(|c| c.nats.tls.cert_file = Some("client.pem".into()), &["nats.tls.key_file"]);
    assert_only(|c| c.nats.tls.key_file = Some("client.key".into()), &["nats.tls.cert_file"]);
    assert_fine(|c| {
        c.grpc.tls.cert_file = Some("grpc.pem".into());
        c.grpc.tls.key_file = Some("grpc.key".into());
        c.nats.tls.ca_file = Some("ca.pem".into());
    });
}

#[test]
fn jwt_auth_needs_a_key() {
    assert_only(|c| c.grpc.auth.mode = "jwt".into(), &["grpc.auth"]);
    assert_only(|c| c.grpc.auth.mode = "JWT".into(), &["grpc.auth.mode"]);
    assert_only(
        |c| {
            c.grpc.auth.mode = "jwt".into();
            c.grpc.auth.hs256_secret = Some(Secret::new(""));
        },
        &["grpc.auth"],
    );
    assert_only(
        |c| {
            c.grpc.auth.mode = "jwt".into();
            c.grpc.auth.hs256_secret = Some(Secret::new("short"));
        },
        &["grpc.auth.hs256_secret"],
    );
    assert_only(
        |c| {
            c.grpc.auth.mode = "jwt".into();
            c.grpc.auth.hs256_secret = Some(Secret::new("k".repeat(32)));
            c.grpc.auth.hs256_secret_file = Some("jwt.key".into());
        },
        &["grpc.auth.hs256_secret_file"],
    );
    assert_fine(|c| {
        c.grpc.auth.mode = "jwt".into();
        c.grpc.auth.rs256_public_key_file = Some("jwt.pub.pem".into());
    });
    assert_only(
        |c| {
            c.grpc.auth.mode = "jwt".into();
            c.grpc.auth.rs256_public_key_file = Some("jwt.pub.pem".into());
            c.grpc.auth.hs256_secret = Some(Secret::new("k".repeat(32)));
        },
        &["grpc.auth.rs256_public_key_file"],
    );
}

#[test]
fn several_problems_are_all_reported() {
    let paths = paths_after(|c| {
        c.groups[0].id = String::new();
        c.levels.cooldown = Duration::ZERO;
        c.agents.max_concurrent = 0;
        c.metrics.listen = "nowhere".into();
        c.nats.prefix = "a b".into();
    });
    assert_eq!(
        paths,
        [
            "nats.prefix",
            "metrics.listen",
            "groups[0].id",
            "groups[4].overflow[0]",
            "levels.cooldown",
            "agents.max_concurrent"
        ]
    );
}
