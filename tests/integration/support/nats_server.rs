//! Starts the real `nats-server` with JetStream on a random port and a
//! temporary store directory; kills it and removes the store when dropped.
//!
//! The binary comes from `NATS_SERVER_BIN` (set by `scripts/test`), else
//! the project-local `.tools/` install, else `nats-server` on PATH; it must
//! be 2.10.23 or newer (Debian's 2.9 cannot create the state bucket).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running nats-server.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// Where the nats-server binary is, checked once to be new enough.
pub fn binary() -> PathBuf {
    static CHECKED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let bin = find_binary();
            check_version(&bin);
            bin
        })
        .clone()
}

fn find_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

/// Panics with what to do when `bin` is missing or older than 2.10.23.
fn check_version(bin: &Path) {
    let fix = "run the tests with scripts/test (it installs one into .tools/), or set NATS_SERVER_BIN";
    let output = Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run nats-server `{}` ({e}); {fix}", bin.display()));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    // "nats-server: v2.15.1", perhaps with a -dev or -RC suffix.
    let version: Vec<u32> = text
        .split_whitespace()
        .find_map(|word| word.strip_prefix('v'))
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        version.len() >= 3 && version[..3] >= [2, 10, 23][..],
        "nats-server `{}` says {:?}: 2.10.23 or newer is needed; {fix}",
        bin.display(),
        text.trim()
    );
}

impl NatsServer {
    /// A new server on a random port with a fresh store.
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().expect("temporary store directory");
        let store = dir.path().to_path_buf();
        let (child, port) = spawn(&store, None);
        NatsServer { child: Some(child), port, store, _dir: Some(dir) }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) keeping its store, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`true`, SIGSTOP) or thaws (`false`, SIGCONT) the server: a
    /// hung broker whose connections stay open.
    pub fn freeze(&self, frozen: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let done = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(done.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        let (child, _) = spawn(&self.store, Some(self.port));
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(store: &Path, port: Option<u16>) -> (Child, u16) {
    let bin = binary();
    let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
    let mut child = Command::new(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port_arg, "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} ({e}); run scripts/test or set NATS_SERVER_BIN", bin.display()));
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                    let port = addr.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("nats-server at {} did not report its port", bin.display()));
    (child, port)
}
