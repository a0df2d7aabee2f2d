//! TOML text to [`Config`]: syntax errors with their line, type errors with the
//! key path of the bad field. No validation here; that is `validate.rs`.

use super::env::Applied;
use super::{Config, Problem};

/// Parses the file into a table so environment overrides can be written into it.
pub(super) fn parse_table(text: &str) -> Result<toml::Table, Vec<Problem>> {
    text.parse::<toml::Table>().map_err(|e| {
        let at = e.span().map(|span| line_and_column(text, span.start));
        let path = at.map(|(line, column)| format!("line {line}, column {column}")).unwrap_or_default();
        vec![Problem::new(path, format!("TOML syntax error: {}", one_line(e.message())))]
    })
}

/// Deserializes the configuration, naming the path of the first bad field. Serde
/// stops at the first error, so this yields at most one problem. Without overrides
/// the original text is read again so the error can also give its line.
pub(super) fn deserialize(text: &str, table: toml::Table, applied: &[Applied]) -> Result<Config, Problem> {
    let result = match (applied.is_empty(), toml::Deserializer::parse(text)) {
        (true, Ok(from_text)) => serde_path_to_error::deserialize(from_text).map_err(|e| {
            let line = e.inner().span().map(|span| line_and_column(text, span.start).0);
            located(e, line)
        }),
        _ => serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| located(e, None)),
    };
    result.map_err(|mut problem| {
        if let Some(applied) = applied.iter().find(|a| a.path == problem.path) {
            problem.message.push_str(&format!(" (value from environment variable {})", applied.var));
        }
        problem
    })
}

/// The path of an unknown key already ends with the key itself.
fn located(e: serde_path_to_error::Error<toml::de::Error>, line: Option<usize>) -> Problem {
    let path = match e.path().to_string() {
        root if root == "." => String::new(),
        path => path,
    };
    let mut message = one_line(e.inner().message());
    if let Some(line) = line {
        message.push_str(&format!(" (line {line})"));
    }
    Problem::new(path, message)
}

/// 1-based line and column of byte offset `at`.
fn line_and_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Messages go on one line of `check-config` output.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
