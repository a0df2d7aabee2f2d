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

/// Most bad fields reported from one file (each costs a deserialization).
const MAX_FIELD_PROBLEMS: usize = 100;

/// Deserializes the configuration, naming the path of every bad field: serde
/// stops at the first, so that field is taken out (its default applies) and
/// the rest is read again, until it reads. Returns the configuration so read,
/// if any, and the problems. Without overrides the first problem also gives
/// its line, read from the original text.
pub(super) fn deserialize(text: &str, table: toml::Table, applied: &[Applied]) -> (Option<Config>, Vec<Problem>) {
    deserialize_every_problem::<Config>(text, table, applied)
}

/// TOML text to any document type, with every problem as [`deserialize`]
/// finds them (scenario files use it).
pub(crate) fn parse_every_problem<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Vec<Problem>> {
    match deserialize_every_problem(text, parse_table(text)?, &[]) {
        (Some(value), problems) if problems.is_empty() => Ok(value),
        (_, problems) => Err(problems),
    }
}

/// [`deserialize`] for any TOML document type.
fn deserialize_every_problem<T: serde::de::DeserializeOwned>(
    text: &str,
    table: toml::Table,
    applied: &[Applied],
) -> (Option<T>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut root = toml::Value::Table(table);
    if let (true, Ok(from_text)) = (applied.is_empty(), toml::Deserializer::parse(text)) {
        match serde_path_to_error::deserialize::<_, T>(from_text) {
            Ok(config) => return (Some(config), problems),
            Err(e) => {
                let line = e.inner().span().map(|span| line_and_column(text, span.start).0);
                let segments: Vec<_> = e.path().iter().cloned().collect();
                problems.push(located(e, line));
                if !remove_at(&mut root, &segments) {
                    return (None, problems);
                }
            }
        }
    }
    // List elements taken out so far, (list path, index in the file): a later
    // bad element of the same list is named by its index in the file.
    let mut removed: Vec<(String, usize)> = Vec::new();
    if let Some(first) = problems.first() {
        removed.extend(list_element(&first.path));
    }
    while problems.len() < MAX_FIELD_PROBLEMS {
        match serde_path_to_error::deserialize::<_, T>(root.clone()) {
            Ok(config) => return (Some(config), annotate(problems, applied)),
            Err(e) => {
                let segments: Vec<_> = e.path().iter().cloned().collect();
                let mut problem = located(e, None);
                if follows_a_removal(&problems, &problem) {
                    // Said already: take the table out unreported and read on
                    // (at the root there is nothing left to take out).
                    if problem.path.is_empty() || !remove_at(&mut root, &segments) {
                        break;
                    }
                    continue;
                }
                if let Some((list, index)) = list_element(&problem.path) {
                    let in_file = index_in_file(&removed, &list, index);
                    problem.path = format!("{list}[{in_file}]");
                    removed.push((list, in_file));
                }
                problems.push(problem);
                if !remove_at(&mut root, &segments) {
                    break;
                }
            }
        }
    }
    (None, annotate(problems, applied))
}

/// Whether `problem` is about a table holding a field already reported and
/// taken out: a required field is then missing (a configuration has none,
/// a scenario file has a few), which says nothing new.
fn follows_a_removal(problems: &[Problem], problem: &Problem) -> bool {
    let parent = &problem.path;
    problems.iter().any(|p| {
        p.path.strip_prefix(parent.as_str()).is_some_and(|rest| {
            (parent.is_empty() && !rest.is_empty()) || rest.starts_with('.') || rest.starts_with('[')
        })
    })
}

/// `(list, index)` when `path` names a list element, e.g. `a.b[2]`.
fn list_element(path: &str) -> Option<(String, usize)> {
    let open = path.rfind('[')?;
    let index = path.strip_suffix(']')?.get(open + 1..)?.parse().ok()?;
    Some((path[..open].to_string(), index))
}

/// The index in the file of element `index` of `list` once the elements in
/// `removed` (indexes in the file) were taken out of it.
fn index_in_file(removed: &[(String, usize)], list: &str, index: usize) -> usize {
    let mut gone: Vec<usize> = removed.iter().filter(|(l, _)| l == list).map(|&(_, i)| i).collect();
    gone.sort_unstable();
    let mut in_file = index;
    for i in gone {
        if i <= in_file {
            in_file += 1;
        }
    }
    in_file
}

/// Names the environment variable a bad value came from.
pub(super) fn annotate(mut problems: Vec<Problem>, applied: &[Applied]) -> Vec<Problem> {
    for problem in &mut problems {
        if let Some(applied) = applied.iter().find(|a| a.path == problem.path) {
            problem.message.push_str(&format!(" (value from environment variable {})", applied.var));
        }
    }
    problems
}

/// Takes the value at `path` out of `root`; false when there is none.
fn remove_at(root: &mut toml::Value, path: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    match path {
        [] => false,
        [last] => match (root, last) {
            (toml::Value::Table(table), Segment::Map { key }) => table.remove(key).is_some(),
            (toml::Value::Array(items), Segment::Seq { index }) if *index < items.len() => {
                items.remove(*index);
                true
            }
            _ => false,
        },
        [first, rest @ ..] => {
            let child = match (root, first) {
                (toml::Value::Table(table), Segment::Map { key }) => table.get_mut(key),
                (toml::Value::Array(items), Segment::Seq { index }) => items.get_mut(*index),
                _ => None,
            };
            child.is_some_and(|child| remove_at(child, rest))
        }
    }
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
