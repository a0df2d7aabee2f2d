//! The routing settings in which two configurations differ, for
//! `simulate --compare`: a compare file is a whole configuration, not a
//! patch on the first, and the report should say what was compared.

use super::Config;
use serde_json::Value;

/// Every routing setting (those of [`Config::routing`]) whose value
/// differs, as `path: a -> b`; groups are named by id (`groups.orders.overflow`).
pub fn routing_differences(a: &Config, b: &Config) -> Vec<String> {
    let value = |c: &Config| serde_json::to_value(c.routing()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    walk("", &value(a), &value(b), &mut out);
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (key, va) in ma {
                walk(&join(key), va, mb.get(key).unwrap_or(&Value::Null), out);
            }
            for (key, vb) in mb.iter().filter(|(key, _)| !ma.contains_key(*key)) {
                walk(&join(key), &Value::Null, vb, out);
            }
        }
        (Value::Array(xa), Value::Array(xb)) if is_keyed(xa) && is_keyed(xb) => {
            for item in xa {
                let other = xb.iter().find(|o| o["id"] == item["id"]).unwrap_or(&Value::Null);
                walk(&join(item["id"].as_str().unwrap_or("?")), item, other, out);
            }
            for item in xb.iter().filter(|o| !xa.iter().any(|i| i["id"] == o["id"])) {
                walk(&join(item["id"].as_str().unwrap_or("?")), &Value::Null, item, out);
            }
        }
        _ => out.push(format!("{path}: {} -> {}", shown(a), shown(b))),
    }
}

/// Arrays of tables with an `id` (the groups).
fn is_keyed(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("id").is_some_and(Value::is_string))
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(text: &str) -> Config {
        let env = BTreeMap::from([("TICKET_ROUTER_GRPC_AUTH_MODE".to_string(), "none".to_string())]);
        Config::from_toml(text, &env).expect("valid")
    }

    #[test]
    fn names_each_routing_setting_that_differs_and_nothing_else() {
        let a = config("[levels]\ncooldown = \"15m\"\n");
        let b = config("[metrics]\nlisten = \"127.0.0.1:9999\"\n");
        assert_eq!(routing_differences(&a, &a), Vec::<String>::new());
        let diff = routing_differences(&a, &b);
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with("levels.cooldown: 15m") && diff[0].ends_with("5m"), "{diff:?}");
    }

    #[test]
    fn groups_are_compared_by_id() {
        let mut b = Config::default();
        b.groups.reverse();
        b.groups[0].baseline_per_min += 1.0;
        let id = b.groups[0].id.clone();
        let diff = routing_differences(&Config::default(), &b);
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with(&format!("groups.{id}.baseline_per_min: ")), "{diff:?}");
    }
}
