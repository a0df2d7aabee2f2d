//! Starts the real `nats-server` with JetStream on a random port and a
//! temporary store directory; kills it and removes the store when dropped.
//!
//! The binary comes from `NATS_SERVER_BIN` (set by `scripts/test`), else
//! `nats-server` on PATH, else the project-local `.tools/` install.

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

/// Where the nats-server binary is.
pub fn binary() -> PathBuf {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/nats/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
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
