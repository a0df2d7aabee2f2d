//! `ticket-router simulate` as a planner runs it: a short scenario with a
//! chart, and a broken scenario that says what to fix.

use std::process::Command;

const SCENARIO: &str = r#"
name = "short promotion"
start = "2024-11-11T00:00:00+08:00"
duration = "20m"
patience = "3m"

[arrivals]
curve = [{ at = "00:00", per_min = 40 }, { at = "00:20", per_min = 20 }]
spikes = [{ name = "opening", at = "00:00", peak_per_min = 200, rise = "1m", decay = "3m", lasts = "10m" }]

[[roster]]
name = "team"
groups = { pre_sales = 4, orders = 4, after_sales = 4, complaints = 4, fans = 4, supervisors = 4 }
count = 12
start = "00:00"
end = "01:00"
"#;

fn simulate(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticket-router")).arg("simulate").args(args).output().expect("the binary runs")
}

#[test]
fn simulate_prints_the_table_and_writes_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("short.toml");
    let chart = dir.path().join("out.svg");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = simulate(&["--scenario".as_ref(), scenario.as_os_str(), "--chart".as_ref(), chart.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for expected in
        ["short promotion", "<=30s", "p95 wait", "deflected", "abandoned", "pre_sales", "SURGE", "all groups"]
    {
        assert!(stdout.contains(expected), "missing {expected} in:\n{stdout}");
    }
    let svg = std::fs::read_to_string(&chart).expect("the chart was written");
    assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M") && svg.trim_end().ends_with("</svg>"));

    std::fs::write(&scenario, SCENARIO.replace("per_min = 40", "per_minute = 40")).unwrap();
    let out = simulate(&["--scenario".as_ref(), scenario.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("short.toml") && stderr.contains("per_minute") && stderr.contains("line 8"), "{stderr}");
}
