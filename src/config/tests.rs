//! Loading, environment overrides, the deploy file and the check-config report.
//! The validation rules are tested in `validate/tests.rs`.

use super::*;
use crate::core::settings::RoutingSettings;
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) fn no_env() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// A file with one problem of most kinds; also the example in README.md.
pub(super) const BROKEN: &str = r#"
[nats]
prefix = "support.*"
stream = "SUPPORT INQUIRIES"

[grpc]
listen = "0.0.0.0"

[grpc.auth]
mode = "jwt"

[[groups]]
id = "pre_sales"
categories = ["PRE_SALES", "OTHER", "ORDER", "LOGISTICS"]
overflow = ["order"]

[[groups]]
id = "after_sales"
categories = ["AFTER_SALES_REFUND", "AFTER_SALES_EXCHANGE", "AFTER_SALES_REPAIR", "ORDER"]
overflow = ["after_sales"]

[[groups]]
id = "pre_sales"
categories = ["COMPLAINT"]
baseline_per_min = 0.0

[dedicated]
group = "vip"

[escalation]
group = "supervisors"

[levels.surge]
queue_length = 10

[levels.surge_playbook]
reserve_ratio = 1.0

[agents]
max_concurrent = 0
"#;

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file
}

fn deploy_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ticket-router.toml")
}

fn error_lines(text: &str, env: &impl EnvSource) -> Vec<String> {
    Config::from_toml(text, env).expect_err("should be rejected").iter().map(Problem::to_string).collect()
}

#[test]
fn defaults_validate_once_a_jwt_key_is_set() {
    // JWT is the default and has no safe default key, so that is the one problem.
    let problems = validate(&Config::default());
    assert_eq!(problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["grpc.auth"]);

    let mut config = Config::default();
    config.grpc.auth.hs256_secret_file = Some("/run/secrets/jwt".into());
    assert_eq!(validate(&config), []);
    config.grpc.auth = GrpcAuth { mode: "none".into(), ..GrpcAuth::default() };
    assert_eq!(validate(&config), []);
}

#[test]
fn empty_file_gives_the_defaults() {
    let env = [("TICKET_ROUTER_GRPC_AUTH_MODE", "none")];
    let config = Config::from_toml("", &env).unwrap();
    assert_eq!(config.routing(), RoutingSettings::default());
    assert_eq!(config.nats, NatsSettings::default());
    assert_eq!(config.metrics.listen_addr().unwrap().port(), 9464);
    assert_eq!(config.grpc.listen_addr().unwrap().port(), 50051);
}

#[test]
fn deploy_file_loads_validates_and_writes_out_the_defaults() {
    let config = check_config(&deploy_file(), &no_env()).unwrap_or_else(|problems| {
        panic!("{}", Report::new(&deploy_file(), &problems));
    });
    // The demo file documents the defaults; only authentication is switched off.
    let mut expected = Config::default();
    expected.grpc.auth.mode = "none".into();
    assert_eq!(config, expected);
    assert_eq!(config.grpc.auth.auth_mode(), Some(AuthMode::None));
}

#[test]
fn deploy_file_writes_out_every_key() {
    let text = std::fs::read_to_string(deploy_file()).unwrap();
    let table: toml::Table = text.parse().unwrap();
    for (var, path) in env_var_names() {
        let written = lookup(&table, &path).is_some();
        // Optional keys have no default; they are shown commented out.
        let last = path.rsplit('.').next().unwrap();
        let commented = text.contains(&format!("# {last} = "));
        assert!(written || commented, "{path} ({var}) is missing from deploy/ticket-router.toml");
    }
}

#[test]
fn configuration_md_names_every_key() {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for (_, path) in env_var_names() {
        let last = path.rsplit('.').next().unwrap();
        assert!(doc.contains(&format!("`{last}`")), "README.md does not document {path}");
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

#[test]
fn default_round_trips_through_toml() {
    let mut config = Config::default();
    let text = toml::to_string(&config).unwrap();
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);

    // Optional fields too, and durations humantime writes as days.
    config.nats.token = Some(Secret::new("t0ken"));
    config.nats.tls.ca_file = Some("/etc/ca.pem".into());
    config.grpc.auth.issuer = Some("sso".into());
    config.agents.sticky_window = Duration::from_secs(3 * 24 * 3600 + 90);
    let text = toml::to_string(&config).unwrap();
    assert_eq!(toml::from_str::<Config>(&text).unwrap(), config);
}

#[test]
fn secrets_are_not_debug_printed() {
    let mut config = Config::default();
    config.nats.token = Some(Secret::new("nats-token-value"));
    config.grpc.auth.hs256_secret = Some(Secret::new("jwt-secret-value"));
    let debug = format!("{config:?}");
    assert!(!debug.contains("nats-token-value") && !debug.contains("jwt-secret-value"), "{debug}");
    assert_eq!(config.nats.token.unwrap().expose(), "nats-token-value");
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let cases = [
        ("[nats]\nurll = \"nats://x:4222\"\n", "nats.urll: unknown field `urll`"),
        ("natss = 1\n", "natss: unknown field `natss`"),
        ("[grpc.auth]\nmode = \"none\"\nsecret = \"x\"\n", "grpc.auth.secret: unknown field `secret`"),
        ("[[groups]]\nid = \"a\"\n[[groups]]\nid = \"b\"\nbaseline = 3\n", "groups[1].baseline: unknown field"),
        ("[levels.peak_playbook]\nreserve = 0.2\n", "levels.peak_playbook.reserve: unknown field"),
    ];
    for (text, expected) in cases {
        let lines = error_lines(text, &no_env());
        assert!(lines[0].starts_with(expected), "{text:?} gave {lines:?}");
    }
}

#[test]
fn two_bad_elements_of_one_list_are_named_by_their_place_in_the_file() {
    let text = "[grpc.auth]\nmode = \"none\"\n[[groups]]\nid = \"a\"\ncategories = [\"ORDER\", \"REFUND\", \"COMPLAINT\", \"RETURN\"]\n";
    let lines = error_lines(text, &no_env());
    assert!(lines[0].starts_with("groups[0].categories[1]: unknown variant `REFUND`"), "{lines:?}");
    assert!(lines[1].starts_with("groups[0].categories[3]: unknown variant `RETURN`"), "{lines:?}");
}

#[test]
fn every_bad_field_is_listed_not_only_the_first() {
    let text =
        "[grpc.auth]\nmode = \"none\"\n[nats]\nurll = \"x\"\nreplicas = \"three\"\n[agents]\nmax_concurrent = 0\n\
                [[groups]]\nid = \"a\"\nbaseline = 3\n";
    let lines = error_lines(text, &no_env());
    let paths: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    for path in ["nats.urll", "nats.replicas", "groups[0].baseline", "agents.max_concurrent"] {
        assert!(paths.contains(&path), "{path} missing from {lines:?}");
    }
    assert!(lines[0].ends_with(")") && lines[0].contains("(line "), "the first gives its line: {lines:?}");
}

#[test]
fn bad_values_name_their_path_and_line() {
    let lines =
        error_lines("[grpc.auth]\nmode = \"none\"\n[levels]\nwindow = \"1m\"\ncooldown = \"fivemin\"\n", &no_env());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("levels.cooldown: `fivemin` is not a duration"), "{lines:?}");
    assert!(lines[0].ends_with("(line 5)"), "{lines:?}");

    let lines = error_lines("[[groups]]\nid = \"a\"\ncategories = [\"REFUND\"]\n", &no_env());
    assert!(lines[0].starts_with("groups[0].categories[0]: unknown variant `REFUND`"), "{lines:?}");

    let lines = error_lines("[levels.peak]\nqueue_length = -3\n", &no_env());
    assert!(lines[0].starts_with("levels.peak.queue_length: invalid value: integer `-3`"), "{lines:?}");

    let lines = error_lines("[nats]\noutbound_encoding = \"xml\"\n", &no_env());
    assert!(
        lines[0].starts_with("nats.outbound_encoding: unknown variant `xml`, expected `json` or `protobuf`"),
        "{lines:?}"
    );
}

#[test]
fn syntax_errors_give_their_line() {
    let lines = error_lines("[nats]\nurl = \"nats://x:4222\"\nprefix = support\n", &no_env());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("line 3, column 10: TOML syntax error"), "{lines:?}");
}

#[test]
fn env_overrides_apply() {
    let text = "[levels]\ncooldown = \"5m\"\n[grpc.auth]\nmode = \"jwt\"\n";
    let env = [
        ("TICKET_ROUTER_NATS_URL", "nats://nats:4222"),
        ("TICKET_ROUTER_METRICS_LISTEN", "127.0.0.1:9000"),
        ("TICKET_ROUTER_AGENTS_MAX_CONCURRENT", "8"),
        ("TICKET_ROUTER_LEVELS_PEAK_ARRIVAL_RATIO", "3"),
        ("TICKET_ROUTER_LEVELS_COOLDOWN", "10m"),
        ("TICKET_ROUTER_GRPC_AUTH_MODE", "none"),
        ("TICKET_ROUTER_NATS_TLS_REQUIRED", "true"),
        ("TICKET_ROUTER_NATS_CREDENTIALS_FILE", "/etc/router.creds"),
        ("TICKET_ROUTER_DEDICATED_GROUP", ""),
        ("TICKET_ROUTER_NATS_TOKEN", ""),
        ("TICKET_ROUTER_NATS_OUTBOUND_ENCODING", "protobuf"),
        ("PATH", "/usr/bin"),
    ];
    let config = Config::from_toml(&format!("{text}[nats]\ntoken = \"from-file\"\n"), &env).unwrap();
    assert_eq!(config.nats.token, None, "an empty variable unsets an optional key");
    assert_eq!(config.nats.url, "nats://nats:4222");
    assert_eq!(config.metrics.listen, "127.0.0.1:9000");
    assert_eq!(config.agents.max_concurrent, 8);
    assert_eq!(config.levels.peak.arrival_ratio, 3.0);
    assert_eq!(config.levels.cooldown, Duration::from_secs(600));
    assert_eq!(config.grpc.auth.auth_mode(), Some(AuthMode::None));
    assert!(config.nats.tls.required);
    assert_eq!(config.nats.credentials_file, Some("/etc/router.creds".into()));
    assert_eq!(config.dedicated.group, "");
    assert_eq!(config.nats.outbound_encoding, WireEncoding::Protobuf);
}

#[test]
fn env_overrides_work_from_a_map_and_a_file() {
    let file = write_temp(
        "[nats]\nprefix = \"acme.support\"\nstream = \"ACME\"\nconsumer = \"acme\"\nstate_bucket = \"acme\"\ndeadletter_stream = \"ACME_DEAD\"\ndeflection_stream = \"ACME_BOT\"\n",
    );
    let env: BTreeMap<String, String> =
        [("TICKET_ROUTER_GRPC_AUTH_HS256_SECRET".to_string(), "x".repeat(32))].into_iter().collect();
    let config = Config::load(file.path(), &env).unwrap();
    assert_eq!(config.nats.prefix, "acme.support");
    assert_eq!(config.grpc.auth.hs256_secret.unwrap().expose(), "x".repeat(32));
}

#[test]
fn unknown_env_variables_are_errors() {
    let env = [
        ("TICKET_ROUTER_NATS_URLS", "nats://x:4222"),
        ("TICKET_ROUTER_GROUPS_0_ID", "x"),
        ("TICKET_ROUTER_SOMETHING", "1"),
        ("TICKET_ROUTER_GRPC_AUTH_MODE", "none"),
    ];
    let lines = error_lines("", &env);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("TICKET_ROUTER_GROUPS_0_ID: [[groups]] cannot be set"), "{lines:?}");
    assert!(lines[1].starts_with("TICKET_ROUTER_NATS_URLS: no such setting; did you mean TICKET_ROUTER_NATS_URL?"));
    assert!(lines[2].starts_with("TICKET_ROUTER_SOMETHING: no such setting"), "{lines:?}");
}

#[test]
fn kubernetes_service_link_variables_are_not_taken_for_settings() {
    // What a pod gets for a Service named ticket-router, unless enableServiceLinks is off.
    let env = [
        ("TICKET_ROUTER_SERVICE_HOST", "10.0.0.7"),
        ("TICKET_ROUTER_SERVICE_PORT", "50051"),
        ("TICKET_ROUTER_SERVICE_PORT_GRPC", "50051"),
        ("TICKET_ROUTER_PORT", "tcp://10.0.0.7:50051"),
        ("TICKET_ROUTER_PORT_50051_TCP_ADDR", "10.0.0.7"),
        ("TICKET_ROUTER_PORT_9464_TCP_PROTO", "tcp"),
        ("TICKET_ROUTER_GRPC_AUTH_MODE", "none"),
    ];
    let config = Config::from_toml("", &env).expect("the link variables are passed over");
    assert_eq!(config.grpc.auth.mode, "none");
}

#[test]
fn bad_env_values_name_the_variable() {
    let env = [("TICKET_ROUTER_AGENTS_MAX_CONCURRENT", "many"), ("TICKET_ROUTER_GRPC_AUTH_MODE", "none")];
    let lines = error_lines("", &env);
    assert_eq!(
        lines,
        ["agents.max_concurrent: invalid type: string \"many\", expected u32 \
          (value from environment variable TICKET_ROUTER_AGENTS_MAX_CONCURRENT)"]
    );
    // A value that is valid but wrong is a validation problem at the key's
    // path, which says where the value came from too.
    let env = [("TICKET_ROUTER_GRPC_AUTH_MODE", "jtw")];
    assert_eq!(
        error_lines("", &env)[0],
        "grpc.auth.mode: unknown mode \"jtw\"; write \"jwt\" or, for a local demo only, \"none\" \
         (value from environment variable TICKET_ROUTER_GRPC_AUTH_MODE)"
    );
    let env = [("TICKET_ROUTER_AGENTS_MAX_CONCURRENT", "0"), ("TICKET_ROUTER_GRPC_AUTH_MODE", "none")];
    let lines = error_lines("", &env);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with("(value from environment variable TICKET_ROUTER_AGENTS_MAX_CONCURRENT)"), "{lines:?}");
}

#[test]
fn a_duration_override_may_be_whole_seconds_as_in_the_file() {
    let env = [("TICKET_ROUTER_LEVELS_COOLDOWN", "300"), ("TICKET_ROUTER_GRPC_AUTH_MODE", "none")];
    let config = Config::from_toml("", &env).expect("whole seconds");
    assert_eq!(config.levels.cooldown, Duration::from_secs(300));
}

#[test]
fn env_variable_names_follow_the_rule() {
    let names: BTreeMap<_, _> = env_var_names().into_iter().collect();
    assert_eq!(names["TICKET_ROUTER_NATS_URL"], "nats.url");
    assert_eq!(names["TICKET_ROUTER_GRPC_AUTH_MODE"], "grpc.auth.mode");
    assert_eq!(names["TICKET_ROUTER_NATS_TLS_CA_FILE"], "nats.tls.ca_file");
    assert_eq!(names["TICKET_ROUTER_LEVELS_SURGE_PLAYBOOK_RESERVE_RATIO"], "levels.surge_playbook.reserve_ratio");
    assert_eq!(names["TICKET_ROUTER_PRIORITY_BASE_COMPLAINT"], "priority.base.COMPLAINT");
    assert!(names.keys().all(|name| !name.starts_with("TICKET_ROUTER_GROUPS")));
}

#[test]
fn broken_file_reports_every_problem() {
    let file = write_temp(BROKEN);
    let problems = check_config(file.path(), &no_env()).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "nats.prefix",
            "nats.stream",
            "grpc.listen",
            "grpc.auth",
            "groups[0].overflow[0]",
            "groups[1].overflow[0]",
            "groups[2].id",
            "groups[2].baseline_per_min",
            "groups[1].categories[3]",
            "dedicated.group",
            "escalation.group",
            "levels.surge.queue_length",
            "levels.surge_playbook.reserve_ratio",
            "agents.max_concurrent",
        ]
    );
    let report = Report::new(std::path::Path::new("broken.toml"), &problems).to_string();
    assert_eq!(report.lines().count(), problems.len());
    assert!(report.lines().all(|line| line.starts_with("broken.toml: ")));
    println!("{report}");
}

#[test]
fn missing_file_is_one_problem() {
    let path = std::path::Path::new("/nonexistent/ticket-router.toml");
    let errors = Config::load(path, &no_env()).unwrap_err();
    assert_eq!(errors.problems.len(), 1);
    assert!(errors.to_string().starts_with("/nonexistent/ticket-router.toml: cannot read the file: "), "{errors}");
}

#[test]
fn summary_names_groups_and_thresholds() {
    let config = check_config(&deploy_file(), &no_env()).unwrap();
    assert_eq!(
        config.summary(),
        "ok: 6 groups (pre_sales, orders, after_sales, complaints, fans, supervisors); \
         PEAK at 2x baseline, 20 queued or 1m wait; SURGE at 5x baseline, 100 queued or 3m wait; gRPC auth none"
    );
}

/// The example output in README.md is what the code prints.
#[test]
fn configuration_md_examples_are_real_output() {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let broken = Config::from_toml(BROKEN, &no_env()).unwrap_err();
    let mut reports = vec![Report::new(std::path::Path::new("broken.toml"), &broken).to_string()];
    let three_bad = "[levels]\nwindow = \"1m\"\ncooldown = \"fivemin\"\n\n[nats]\nurll = \"nats://x:4222\"\n\n\
                     [grpc.auth]\nmode = \"none\"\n\n[agents]\nmax_concurrent = \"five\"\n";
    let cases = [
        (three_bad, None),
        ("[nats]\nurl = \"nats://x:4222\"\nprefix = support\n", None),
        ("[grpc.auth]\nmode = \"none\"\n", Some("TICKET_ROUTER_NATS_URLS")),
    ];
    for (text, var) in cases {
        let env: BTreeMap<String, String> =
            var.map(|v| (v.to_string(), "nats://x:4222".to_string())).into_iter().collect();
        let problems = Config::from_toml(text, &env).unwrap_err();
        reports.push(Report::new(std::path::Path::new("ticket-router.toml"), &problems).to_string());
    }
    for report in reports {
        assert!(doc.contains(&report), "README.md should show:\n{report}");
    }
}

#[test]
fn a_partial_level_table_keeps_the_defaults_of_its_own_level() {
    let config = Config::from_toml(
        "[grpc.auth]\nmode = \"none\"\n[levels.surge]\nqueue_length = 150\n[levels.surge_playbook]\nreserve_ratio = 0.15\n",
        &std::collections::BTreeMap::<String, String>::new(),
    )
    .expect("valid");
    let levels = &config.levels;
    assert_eq!(levels.surge.queue_length, 150);
    assert_eq!(levels.surge.arrival_ratio, 5.0, "SURGE's own 5x, not PEAK's 2x");
    assert_eq!(levels.surge.oldest_wait, std::time::Duration::from_secs(180));
    assert_eq!(levels.surge_playbook.reserve_ratio, 0.15);
    assert!(levels.surge_playbook.deflect_low_pre_sales, "SURGE still deflects");
    assert_eq!(levels.surge_playbook.extra_concurrent, 2);
}

#[test]
fn finished_inquiries_must_be_kept_long_enough_to_recognise_duplicates() {
    let problems =
        Config::from_toml("[grpc.auth]\nmode = \"none\"\n[agents]\nretain_finished = \"0s\"\n", &no_env()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "agents.retain_finished");
    assert!(problems[0].message.contains("at least 10m"), "{}", problems[0].message);
    assert!(Config::from_toml("[grpc.auth]\nmode = \"none\"\n[agents]\nretain_finished = \"10m\"\n", &no_env()).is_ok());
}
