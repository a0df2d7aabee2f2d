//! Runs the real `ticket-router serve` binary against a test NATS, with a
//! configuration written for the test, and stops it when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running router process.
pub struct RouterProcess {
    child: Option<Child>,
    pub grpc_addr: String,
    pub metrics_addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The configuration used by tests: the demo file's groups, auth off,
/// ephemeral ports, short timers; `extra` is appended (TOML).
pub fn test_config(nats_url: &str, prefix: &str, extra: &str) -> String {
    let token = prefix.replace('.', "_");
    let upper = token.to_uppercase();
    // A prefix of its own needs names of its own (check-config insists).
    let names = if prefix == "support" {
        String::new()
    } else {
        format!("consumer = \"router-{token}\"\nstate_bucket = \"state_{token}\"\ndeadletter_stream = \"{upper}_DEADLETTER\"\ndeflection_stream = \"{upper}_DEFLECTIONS\"\n")
    };
    format!(
        r#"
[nats]
url = "{nats_url}"
prefix = "{prefix}"
stream = "{upper}_INQUIRIES"
lease = "3s"
{names}

[grpc]
listen = "127.0.0.1:0"

{auth}
[metrics]
listen = "127.0.0.1:0"

{extra}
"#,
        auth = if extra.contains("[grpc.auth]") { "" } else { "[grpc.auth]\nmode = \"none\"\n" },
    )
}

impl RouterProcess {
    /// Starts the router with `config` (TOML text) and waits until it reports ready.
    pub fn start(config: &str) -> RouterProcess {
        Self::start_with_env(config, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> RouterProcess {
        let mut pending = Self::launch(config, env);
        if !pending.ready_within(Duration::from_secs(60)) {
            panic!("router did not become ready; its log:\n{}", pending.process.log_text());
        }
        pending.process
    }

    /// Starts the router without waiting for it to report ready.
    pub fn launch(config: &str, env: &[(&str, &str)]) -> PendingRouter {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("router.toml");
        std::fs::write(&file, config).expect("write config");
        let log = dir.path().join("router.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ticket-router"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "info,ticket_router=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start ticket-router serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ticket-router ready: ") {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
        let process =
            RouterProcess { child: Some(child), grpc_addr: String::new(), metrics_addr: String::new(), log, _dir: dir };
        PendingRouter { process, ready }
    }
    /// `http://<grpc addr>` for tonic clients.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The text of `GET /metrics`.
    pub async fn scrape(&self) -> String {
        Self::scrape_at(&self.metrics_addr).await
    }

    /// The text of `GET /metrics` at `addr` (host:port).
    pub async fn scrape_at(addr: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to /metrics");
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read response");
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        dechunk(&body)
    }

    /// Where the router writes its log.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// The last lines of the router's log (for failure messages).
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Sends SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        Command::new("kill").arg(format!("-{signal}")).arg(pid).status().expect("kill runs");
    }

    /// Its exit status, if it exits within `wait`.
    pub fn exit_within(&mut self, wait: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().ok()
    }
}

/// A router started but not yet known to be ready.
pub struct PendingRouter {
    pub process: RouterProcess,
    ready: mpsc::Receiver<String>,
}

impl PendingRouter {
    /// Whether it reported ready within `wait`; its addresses are then filled in.
    pub fn ready_within(&mut self, wait: Duration) -> bool {
        let Ok(line) = self.ready.recv_timeout(wait) else { return false };
        for part in line.split_whitespace() {
            if let Some(addr) = part.strip_prefix("grpc=") {
                self.process.grpc_addr = addr.to_string();
            } else if let Some(addr) = part.strip_prefix("metrics=") {
                self.process.metrics_addr = addr.to_string();
            }
        }
        true
    }
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Undoes HTTP/1.1 chunked transfer encoding when present.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else { return body.to_string() };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else { return body.to_string() };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_string();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// The value of the sample `name{labels}` in a scrape, if present.
pub fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok()))
}

/// The demo's six groups with one accept timeout and one baseline for all.
pub fn groups_toml(accept_timeout: &str, baseline_per_min: f64) -> String {
    let groups = [
        ("pre_sales", "\"PRE_SALES\", \"OTHER\"", "\"orders\""),
        ("orders", "\"ORDER\", \"LOGISTICS\"", "\"after_sales\""),
        ("after_sales", "\"AFTER_SALES_REFUND\", \"AFTER_SALES_EXCHANGE\", \"AFTER_SALES_REPAIR\"", "\"orders\""),
        ("complaints", "\"COMPLAINT\"", "\"supervisors\""),
        ("fans", "", "\"pre_sales\""),
        ("supervisors", "", ""),
    ];
    groups
        .iter()
        .map(|(id, categories, overflow)| {
            format!(
                "[[groups]]\nid = \"{id}\"\ncategories = [{categories}]\noverflow = [{overflow}]\naccept_timeout = \"{accept_timeout}\"\nbaseline_per_min = {baseline_per_min:.1}\n\n"
            )
        })
        .collect()
}

/// Prints the warnings and errors of a router log if the test panics.
pub struct DumpLogOnPanic(pub PathBuf);

impl Drop for DumpLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let notable: Vec<&str> = text.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
            eprintln!(
                "router log, warnings and errors (last 40):\n{}",
                notable[notable.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}
