//! `promtool` (Debian's `prometheus` package; `PROMTOOL_BIN` or PATH).

use std::io::Write;
use std::process::{Command, Stdio};

fn binary() -> String {
    std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_string())
}

/// Runs `promtool check metrics` on a scrape and fails the test on any finding.
pub fn check_metrics(scrape: &str) {
    let mut child = Command::new(binary())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs; run scripts/test or set PROMTOOL_BIN");
    child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && findings.trim().is_empty(), "promtool check metrics:\n{findings}");
}
