//! Value trees (JSON): the comparisons the host and the policies both make of a value
//! someone set and the value that will be in place, and how a change reads in a message.

use std::collections::BTreeMap;

use serde_json::Value;

/// Whether `tree` says nothing `base` does not: every mapping key of `tree` is in `base`
/// with a value it covers in turn; lists and scalars are equal. (An installed-state's
/// `k8s.service` without the `type` the charts default covers nothing new.)
pub fn covers(base: &Value, tree: &Value) -> bool {
    match (base, tree) {
        (Value::Object(b), Value::Object(t)) => t
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|bv| covers(bv, v))),
        (b, t) => b == t,
    }
}

/// What differs between two values, short: a scalar as `old → new`; a mapping or a list as
/// the entries added, removed and changed inside it (`ports[name:tcp] added,
/// ports[name:tcp-istiod] removed`), at most five, then how many more.
pub fn describe_change(old: Option<&Value>, new: Option<&Value>) -> String {
    let structured = |v: Option<&Value>| matches!(v, Some(Value::Object(_) | Value::Array(_)));
    if !structured(old) || !structured(new) {
        return format!("{} → {}", show(old), show(new));
    }
    let (a, b) = (
        inner(old.unwrap_or(&Value::Null)),
        inner(new.unwrap_or(&Value::Null)),
    );
    let mut parts = Vec::new();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(_), None) => parts.push(format!("{k} removed")),
            (None, Some(v)) => parts.push(format!("{k} added ({})", show(Some(v)))),
            (Some(x), Some(y)) if x != y => {
                parts.push(format!("{k}: {}", describe_change(Some(x), Some(y))))
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return "only the order of its entries".into();
    }
    let more = parts.len().saturating_sub(5);
    parts.truncate(5);
    let mut out = parts.join(", ");
    if more > 0 {
        out.push_str(&format!(", and {more} more"));
    }
    out
}

/// The entries of a mapping or list, one level deep: keys; named items as `[name:x]`, or
/// by `port` for service ports; other items by position.
fn inner(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let key = match (&item["name"], &item["port"]) {
                    (Value::String(n), _) => format!("[name:{n}]"),
                    (_, Value::Number(p)) => format!("[port:{p}]"),
                    _ => format!("[{i}]"),
                };
                (key, item.clone())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Render a JSON leaf compactly for messages (`"x"` → `x`).
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "(unset)".into(),
        // An empty string stays visible, and `--set path=""` reads it back as one.
        Some(Value::String(s)) if s.is_empty() => "\"\"".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tree_covers_what_it_holds_with_more_beside_it() {
        assert!(covers(&json!({"a": 1, "b": [1]}), &json!({"b": [1]})));
        assert!(!covers(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!covers(&json!({"l": [1, 2]}), &json!({"l": [1]})));
    }
}
