//! A real Prometheus server and `promtool`, both from Debian's `prometheus`
//! package (`scripts/test` installs it). Prometheus runs on a free port with a
//! temporary store and is killed when dropped; queries go over its HTTP API.
//!
//! Binaries: `PROMETHEUS_BIN`, else `prometheus` next to `PROMTOOL_BIN`, else
//! `prometheus` on PATH; `PROMTOOL_BIN`, else `promtool` on PATH.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the prometheus binary is.
pub fn prometheus_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("PROMETHEUS_BIN") {
        return PathBuf::from(bin);
    }
    if let Ok(promtool) = std::env::var("PROMTOOL_BIN") {
        let sibling = Path::new(&promtool).with_file_name("prometheus");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from("prometheus")
}

/// Runs `promtool ARGS` in `dir`; returns whether it succeeded and its output.
pub fn promtool(dir: &Path, args: &[&str]) -> (bool, String) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".to_string());
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} ({e}); run scripts/test or set PROMTOOL_BIN"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A running Prometheus.
pub struct Prometheus {
    child: Option<Child>,
    /// `127.0.0.1:<port>` of its HTTP API.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml text) and the `files`
    /// (name, text) it refers to, all in one temporary directory, and waits
    /// until `/-/ready` answers 200.
    pub async fn start(config: &str, files: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a file next to prometheus.yml");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let addr = format!("127.0.0.1:{port}");
        let bin = prometheus_binary();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); install Debian's prometheus package (scripts/test does) or set PROMETHEUS_BIN",
                    bin.display()
                )
            });
        let mut prometheus = Prometheus { child: Some(child), addr, dir };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("prometheus exited ({status}) before it was ready; its log:\n{}", self.log_text());
                }
            }
            if matches!(self.get("/-/ready").await, Ok((200, _))) {
                return;
            }
            if Instant::now() > deadline {
                panic!("prometheus was not ready within 60 s; its log:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` over HTTP/1.0 (no chunking); the status code and the body.
    pub async fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n\r\n", self.addr);
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_string()))
    }

    /// `GET path` of the JSON API: the `data` of a `"status": "success"` answer,
    /// or the answer itself as the error.
    pub async fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = self.get(path).await.map_err(|e| format!("GET {path}: {e}"))?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("GET {path}: {status} {e}: {body}"))?;
        if status == 200 && json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("GET {path}: {status} {body}"))
        }
    }

    /// An instant query: the result vector's series.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr))).await?;
        match data["result"].as_array() {
            Some(series) => Ok(series.clone()),
            None => Err(format!("{expr}: not a vector: {data}")),
        }
    }

    /// Prometheus' log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
