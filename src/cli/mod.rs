//! The subcommands of the binary, each a function the thin `main` calls.

use crate::config::{check_config as check, Report, StdEnv};
use std::path::Path;
use std::process::ExitCode;

/// `ticket-router check-config FILE`: prints a summary and exits 0, or prints
/// every problem as `FILE: path: message` on stderr and exits 1.
pub fn check_config(file: &Path) -> ExitCode {
    match check(file, &StdEnv) {
        Ok(config) => {
            println!("{}: {}", file.display(), config.summary());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}", Report::new(file, &problems));
            eprintln!("{}: {} problem(s); fix them and run check-config again", file.display(), problems.len());
            ExitCode::FAILURE
        }
    }
}
