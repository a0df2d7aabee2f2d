//! What `ticket-router check-config FILE` prints: one `FILE: path: message` line per
//! problem, or a one-line summary of a good file. Printing and the exit code are the
//! binary's job; this module only builds the text.

use super::{Config, EnvSource, Problem};
use std::fmt;
use std::path::{Path, PathBuf};

/// Loads and validates `path` with the overrides of `env`, returning every problem.
pub fn check_config(path: &Path, env: &impl EnvSource) -> Result<Config, Vec<Problem>> {
    Config::load(path, env).map_err(|errors| errors.problems)
}

impl Config {
    /// The files this configuration makes the router read (keys, certificates,
    /// credentials) that cannot be opened, one problem each. `serve` stops on
    /// the first of them; `check-config --files` lists them all, where the
    /// router runs (a CI machine checking the file has no secrets mounted).
    pub fn unreadable_files(&self) -> Vec<Problem> {
        let (nats, grpc) = (&self.nats, &self.grpc);
        let jwt = grpc.auth.auth_mode() == Some(super::AuthMode::Jwt);
        let tls = grpc.tls.enabled();
        let files = [
            ("nats.credentials_file", &nats.credentials_file, true),
            ("nats.nkey_seed_file", &nats.nkey_seed_file, true),
            ("nats.tls.ca_file", &nats.tls.ca_file, true),
            ("nats.tls.cert_file", &nats.tls.cert_file, true),
            ("nats.tls.key_file", &nats.tls.key_file, true),
            ("grpc.tls.cert_file", &grpc.tls.cert_file, tls),
            ("grpc.tls.key_file", &grpc.tls.key_file, tls),
            ("grpc.auth.hs256_secret_file", &grpc.auth.hs256_secret_file, jwt),
            ("grpc.auth.rs256_public_key_file", &grpc.auth.rs256_public_key_file, jwt),
        ];
        files
            .into_iter()
            .filter_map(|(key, path, used)| {
                let path = path.as_deref().filter(|p| used && !p.as_os_str().is_empty())?;
                let why = match std::fs::metadata(path) {
                    Ok(meta) if meta.is_dir() => "it is a directory".to_string(),
                    Ok(_) => std::fs::File::open(path).err()?.to_string(),
                    Err(e) => e.to_string(),
                };
                let message = format!(
                    "cannot read `{}`: {why}; fix the path (a relative one starts from the directory the router runs in) or the file's permissions",
                    path.display()
                );
                Some(Problem::new(key, message))
            })
            .collect()
    }
}

/// The problems of one configuration file; displays as a [`Report`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", Report::new(file, problems))]
pub struct ConfigErrors {
    /// The file that was loaded.
    pub file: PathBuf,
    /// Every problem found, section by section.
    pub problems: Vec<Problem>,
}

/// Displays problems as `FILE: path: message`, one per line.
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    file: &'a Path,
    problems: &'a [Problem],
}

impl<'a> Report<'a> {
    /// A report of `problems` found in `file`.
    pub fn new(file: &'a Path, problems: &'a [Problem]) -> Report<'a> {
        Report { file, problems }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {problem}", self.file.display())?;
        }
        Ok(())
    }
}

impl Config {
    /// One line for `check-config` on success: the groups and the level thresholds.
    pub fn summary(&self) -> String {
        let groups: Vec<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        let level = |name: &str, t: &crate::core::settings::LevelThresholds| {
            format!(
                "{name} at {}x baseline, {} queued or {} wait",
                t.arrival_ratio,
                t.queue_length,
                humantime::format_duration(t.oldest_wait)
            )
        };
        format!(
            "ok: {} groups ({}); {}; {}; gRPC auth {}",
            groups.len(),
            groups.join(", "),
            level("PEAK", &self.levels.peak),
            level("SURGE", &self.levels.surge),
            self.grpc.auth.mode
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_the_router_would_read_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("jwt.key");
        std::fs::write(&key, "k".repeat(40)).unwrap();
        let mut config = Config::default();
        config.grpc.auth.mode = "jwt".into();
        config.grpc.auth.hs256_secret_file = Some(key);
        assert_eq!(config.unreadable_files(), []);

        config.nats.tls.ca_file = Some(dir.path().join("missing-ca.pem"));
        config.grpc.auth.rs256_public_key_file = Some(dir.path().to_path_buf());
        let problems = config.unreadable_files();
        let keys: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(keys, ["nats.tls.ca_file", "grpc.auth.rs256_public_key_file"]);
        assert!(problems[0].message.contains("missing-ca.pem`: No such file"), "{}", problems[0]);
        assert!(problems[1].message.contains("it is a directory"), "{}", problems[1]);

        // Files the router would not read are not its business.
        config.grpc.auth.mode = "none".into();
        config.grpc.tls.cert_file = Some(dir.path().join("no-key-so-no-tls.pem"));
        assert_eq!(config.unreadable_files().len(), 1, "only the NATS CA is still read");
    }
}
