//! Environment overrides: `TICKET_ROUTER_<SECTION>_<KEY>` replaces one key of the file.
//!
//! The environment is read through [`EnvSource`] so production passes [`StdEnv`] and
//! tests pass a map (the linkerd2-proxy `env.rs` pattern). Keys contain underscores,
//! so a variable is matched against the names of every known key rather than split.
//! `[[groups]]` are arrays and cannot be overridden.

use super::{Config, Problem};
use std::collections::{BTreeMap, HashMap};

/// Prefix of every override variable.
pub const ENV_PREFIX: &str = "TICKET_ROUTER_";

/// Where environment variables come from.
pub trait EnvSource {
    /// Every variable as `(name, value)`; only names with [`ENV_PREFIX`] are used.
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdEnv;

impl EnvSource for StdEnv {
    fn vars(&self) -> Vec<(String, String)> {
        // Lossy rather than `std::env::vars`, which panics on non-UTF-8 entries.
        std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl EnvSource for HashMap<String, String> {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// An override that was written into the table, to name it in later errors.
#[derive(Clone, Debug)]
pub(super) struct Applied {
    pub var: String,
    pub path: String,
}

/// The TOML type of a key's default, which decides how a variable's text is read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    /// An optional field (unset by default): an empty value unsets it.
    Optional,
    Bool,
    Integer,
    Float,
}

#[derive(Clone, Debug)]
struct Key {
    path: Vec<String>,
    kind: Kind,
}

/// Every overridable setting as `(variable name, key path)`, sorted by name.
pub fn env_var_names() -> Vec<(String, String)> {
    known_keys().into_iter().map(|(var, key)| (var, key.path.join("."))).collect()
}

/// Known keys by variable name, from the defaults. JSON rather than TOML because it
/// keeps unset optional fields (as `null`); those are all strings, secrets or paths.
fn known_keys() -> BTreeMap<String, Key> {
    let defaults = serde_json::to_value(Config::default()).expect("the default configuration serializes");
    let mut keys = BTreeMap::new();
    collect(&defaults, &mut Vec::new(), &mut keys);
    keys
}

fn collect(value: &serde_json::Value, path: &mut Vec<String>, keys: &mut BTreeMap<String, Key>) {
    use serde_json::Value as J;
    let kind = match value {
        J::Object(fields) => {
            for (name, field) in fields {
                path.push(name.clone());
                collect(field, path, keys);
                path.pop();
            }
            return;
        }
        J::Array(_) => return,
        J::Null => Kind::Optional,
        J::String(_) => Kind::Text,
        J::Bool(_) => Kind::Bool,
        J::Number(n) if n.is_f64() => Kind::Float,
        J::Number(_) => Kind::Integer,
    };
    let var = format!("{ENV_PREFIX}{}", path.join("_").to_uppercase());
    let clash = keys.insert(var.clone(), Key { path: path.clone(), kind });
    debug_assert!(clash.is_none(), "two keys map to {var}");
}

/// Writes every `TICKET_ROUTER_*` variable of `env` into `table`. Returns what was
/// applied and one problem per variable that names no setting.
pub(super) fn apply_overrides(table: &mut toml::Table, env: &impl EnvSource) -> (Vec<Applied>, Vec<Problem>) {
    let keys = known_keys();
    let mut vars: Vec<_> =
        env.vars().into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX) && !is_service_link(name)).collect();
    vars.sort();
    let (mut applied, mut problems) = (Vec::new(), Vec::new());
    for (var, raw) in vars {
        match keys.get(&var) {
            Some(key) => {
                // `VAR=` (e.g. from an unset compose variable) must not become an empty token.
                let value = (key.kind != Kind::Optional || !raw.is_empty()).then(|| typed(key.kind, &raw));
                set(table, &key.path, value);
                applied.push(Applied { var, path: key.path.join(".") });
            }
            None => problems.push(Problem::new(var.clone(), unknown_message(&var, &keys))),
        }
    }
    (applied, problems)
}

/// Whether `name` is one of the variables Kubernetes gives every pod for a
/// Service called `ticket-router` (`TICKET_ROUTER_SERVICE_HOST`,
/// `TICKET_ROUTER_PORT_50051_TCP_ADDR`, ...): not settings, and no setting
/// is named like them, so they are passed over rather than refused.
fn is_service_link(name: &str) -> bool {
    let rest = &name[ENV_PREFIX.len()..];
    rest == "SERVICE_HOST" || rest == "PORT" || rest.starts_with("SERVICE_PORT") || rest.starts_with("PORT_")
}

/// Reads the text as the default's type when it is one; otherwise keeps the text so
/// deserialization reports the mismatch with the key's path.
fn typed(kind: Kind, raw: &str) -> toml::Value {
    let text = raw.trim();
    let value = match kind {
        Kind::Text | Kind::Optional => None,
        Kind::Bool => text.parse().ok().map(toml::Value::Boolean),
        Kind::Integer => text.parse().ok().map(toml::Value::Integer),
        Kind::Float => text.parse().ok().map(toml::Value::Float),
    };
    value.unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Puts `value` at `path` (removes the key for `None`), creating missing tables. A
/// non-table in the way is left alone: deserialization reports it.
fn set(table: &mut toml::Table, path: &[String], value: Option<toml::Value>) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut current = table;
    for name in parents {
        let entry = current.entry(name.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(inner) => current = inner,
            _ => return,
        }
    }
    match value {
        Some(value) => current.insert(last.clone(), value),
        None => current.remove(last),
    };
}

fn unknown_message(var: &str, keys: &BTreeMap<String, Key>) -> String {
    if var.starts_with(&format!("{ENV_PREFIX}GROUPS")) {
        return "[[groups]] cannot be set from the environment; edit the configuration file, or unset this variable"
            .into();
    }
    let closest = keys.keys().map(|known| (edit_distance(var, known), known)).min();
    match closest {
        Some((distance, known)) if distance <= 3 => {
            format!("no such setting; did you mean {known}? Unset this variable or fix its name")
        }
        _ => format!(
            "no such setting; override variables are {ENV_PREFIX}<SECTION>_<KEY> for a key of the file \
             (e.g. {ENV_PREFIX}NATS_URL); unset this variable or fix its name"
        ),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
