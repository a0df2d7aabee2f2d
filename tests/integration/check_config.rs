//! `ticket-router check-config` as a user runs it.

use std::path::Path;
use std::process::Command;

fn check_config(file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticket-router"))
        .arg("check-config")
        .arg(file)
        .env_remove("TICKET_ROUTER_GRPC_AUTH_MODE")
        .output()
        .expect("the binary runs")
}

#[test]
fn the_default_deploy_file_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ticket-router.toml");
    let out = check_config(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ok: 6 groups"), "{stdout}");
}

#[test]
fn a_broken_file_lists_every_problem_with_its_path_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        r#"
[[groups]]
id = "pre_sales"
categories = ["PRE_SALES", "OTHER"]
overflow = ["nowhere"]

[[groups]]
id = "pre_sales"
categories = ["ORDER"]

[levels.surge_playbook]
reserve_ratio = 1.5

[levels.surge]
queue_length = 5
"#,
    )
    .unwrap();
    let out = check_config(&file);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for path in [
        "groups[0].overflow[0]",
        "groups[1].id",
        "levels.surge_playbook.reserve_ratio",
        "levels.surge.queue_length",
        "LOGISTICS",
    ] {
        assert!(stderr.contains(path), "missing {path} in:\n{stderr}");
    }
    assert!(stderr.lines().all(|l| l.starts_with(&*file.to_string_lossy())), "{stderr}");
}

#[test]
fn a_file_that_does_not_parse_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[levels]\ncooldown = \"five minutes\"\n").unwrap();
    let out = check_config(&file);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("levels.cooldown"), "{stderr}");
}

#[test]
fn a_missing_file_says_so() {
    let out = check_config(Path::new("/nonexistent/ticket-router.toml"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ticket-router.toml"));
}

#[test]
fn with_files_the_secrets_it_names_must_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.toml");
    let missing = dir.path().join("jwt.key");
    std::fs::write(&file, format!("[grpc.auth]\nmode = \"jwt\"\nhs256_secret_file = {:?}\n", missing)).unwrap();
    assert!(check_config(&file).status.success(), "without --files the content alone is checked (CI)");
    let out = Command::new(env!("CARGO_BIN_EXE_ticket-router"))
        .args(["check-config", "--files"])
        .arg(&file)
        .env_remove("TICKET_ROUTER_GRPC_AUTH_MODE")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("prod.toml: grpc.auth.hs256_secret_file: cannot read"), "{stderr}");
    let with_files = || {
        Command::new(env!("CARGO_BIN_EXE_ticket-router"))
            .args(["check-config", "--files"])
            .arg(&file)
            .env_remove("TICKET_ROUTER_GRPC_AUTH_MODE")
            .output()
            .expect("the binary runs")
    };
    // Readable but too short to sign with: `serve` would refuse it.
    std::fs::write(&missing, "k").unwrap();
    let out = with_files();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("prod.toml: grpc.auth: the HS256 secret is 1 bytes"), "{stderr}");
    std::fs::write(&missing, "k".repeat(40)).unwrap();
    assert!(with_files().status.success());
}
