//! Values: profile defaults, then `-f` files in order, then `--set path=value`.
//!
//! The user's part (files and `--set`) is kept apart as the *overlay*: it is what
//! history records, what a later run must repeat, and what `values-revert` compares.
//! Every overlay path must exist in the profile defaults with the same type, except
//! below an empty mapping (`env: {}`), which is free-form.

use std::path::Path;

use serde_json::{Map, Value};

use crate::bundle::parse_yaml;
use crate::exit::Exit;

/// Deep-merge `overlay` into `base`: mappings merge key by key, anything else replaces.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Check that every leaf of `overlay` names a value `schema` has, with a compatible type.
pub fn validate(schema: &Value, overlay: &Value) -> Result<(), String> {
    validate_at(schema, overlay, &mut Vec::new())
}

fn validate_at(schema: &Value, overlay: &Value, path: &mut Vec<String>) -> Result<(), String> {
    match (schema, overlay) {
        // An empty mapping in the defaults is free-form (environment variables, metadata).
        (Value::Object(s), _) if s.is_empty() => {
            if overlay.is_object() || overlay.is_null() {
                Ok(())
            } else {
                Err(mismatch(path, schema, overlay))
            }
        }
        (Value::Object(s), Value::Object(o)) => {
            for (k, v) in o {
                path.push(k.clone());
                let Some(sub) = s.get(k) else {
                    let err = unknown(path, s);
                    return Err(err);
                };
                validate_at(sub, v, path)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(s), Value::Array(o)) => match s.first() {
            Some(item_schema) => {
                for (i, v) in o.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    validate_at(item_schema, v, path)?;
                    path.pop();
                }
                Ok(())
            }
            None => Ok(()),
        },
        // null clears a value back to "unset"; always allowed.
        (_, Value::Null) => Ok(()),
        (s, o) if same_type(s, o) => Ok(()),
        (s, o) => Err(mismatch(path, s, o)),
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Bool(_), Value::Bool(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Object(_), Value::Object(_))
            // An unset default (null) accepts anything.
            | (Value::Null, _)
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub fn dotted(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if !s.is_empty() && !p.starts_with('[') {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

fn mismatch(path: &[String], schema: &Value, given: &Value) -> String {
    format!(
        "`{}` must be {} (the default is {}), not {} ({})",
        dotted(path),
        type_name(schema),
        schema,
        type_name(given),
        given
    )
}

fn unknown(path: &[String], siblings: &Map<String, Value>) -> String {
    let last = path.last().map(String::as_str).unwrap_or("");
    let mut msg = format!("unknown value `{}`", dotted(path));
    if let Some(close) = closest(last, siblings.keys()) {
        msg.push_str(&format!(" (did you mean `{close}`?)"));
    }
    let parent = dotted(&path[..path.len() - 1]);
    let keys: Vec<&str> = siblings.keys().map(String::as_str).collect();
    let under = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("under `{parent}`")
    };
    msg.push_str(&format!("; known values {under}: {}", keys.join(", ")));
    msg
}

/// The candidate with the smallest edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    candidates
        .map(|c| (similar_distance(word, c), c))
        .filter(|(d, c)| *d <= c.len().max(word.len()) / 3 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Case-insensitive Levenshtein distance (short keys only, so the quadratic cost is fine).
fn similar_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// One step of a `--set` path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parse `a.b[0].c` (a `\.` keeps a dot inside a key).
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    let flush = |key: &mut String, steps: &mut Vec<Step>| {
        if !key.is_empty() {
            steps.push(Step::Key(std::mem::take(key)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => key.push(chars.next().unwrap_or('.')),
            '.' => {
                if key.is_empty() && !matches!(steps.last(), Some(Step::Index(_))) {
                    return Err(format!("`{path}`: empty key"));
                }
                flush(&mut key, &mut steps);
            }
            '[' => {
                flush(&mut key, &mut steps);
                let idx: String = chars.by_ref().take_while(|c| *c != ']').collect();
                let i = idx
                    .parse()
                    .map_err(|_| format!("`{path}`: `[{idx}]` is not a list index"))?;
                steps.push(Step::Index(i));
            }
            c => key.push(c),
        }
    }
    flush(&mut key, &mut steps);
    if steps.is_empty() {
        return Err("empty path".into());
    }
    Ok(steps)
}

/// A `--set` value is a YAML scalar: `true`, `3`, `0.5`, `null`, `"quoted"`, `[a, b]`, `{}`.
fn parse_scalar(raw: &str) -> Value {
    serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Apply one `--set path=value` to `overlay`, checking the path against `schema`.
pub fn apply_set(schema: &Value, overlay: &mut Value, expr: &str) -> Result<(), String> {
    let (path, raw) = expr.split_once('=').ok_or_else(|| {
        format!("--set {expr}: expected path=value, e.g. --set pilot.replicaCount=2")
    })?;
    let steps = parse_path(path.trim()).map_err(|e| format!("--set {expr}: {e}"))?;
    let mut value = parse_scalar(raw);
    // Coerce a bare scalar to a string where the default is a string ("--set tag=1.8" is "1.8").
    if let Some(Value::String(_)) = lookup(schema, &steps) {
        if !value.is_string() && !value.is_null() {
            value = Value::String(raw.to_string());
        }
    }
    let mut tree = build(&steps, value);
    // Validate the single-path tree, then merge it.
    validate(schema, &tree).map_err(|e| format!("--set {expr}: {e}"))?;
    merge_indexed(overlay, &mut tree);
    Ok(())
}

/// Like `merge`, but lists built from `--set x[i]` merge element-wise (nulls are holes).
fn merge_indexed(base: &mut Value, overlay: &mut Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o.iter_mut() {
                match b.get_mut(k) {
                    Some(slot) => merge_indexed(slot, v),
                    None => {
                        b.insert(k.clone(), v.take());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => {
            for (i, v) in o.iter_mut().enumerate() {
                if v.is_null() {
                    continue;
                }
                if i >= b.len() {
                    b.resize(i + 1, Value::Null);
                }
                merge_indexed(&mut b[i], v);
            }
        }
        (slot, v) => *slot = v.take(),
    }
}

fn lookup<'a>(tree: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let mut cur = tree;
    for s in steps {
        cur = match (s, cur) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i).or_else(|| a.first())?,
            _ => return None,
        };
    }
    Some(cur)
}

fn build(steps: &[Step], leaf: Value) -> Value {
    steps.iter().rev().fold(leaf, |acc, s| match s {
        Step::Key(k) => {
            let mut m = Map::new();
            m.insert(k.clone(), acc);
            Value::Object(m)
        }
        Step::Index(i) => {
            let mut a = vec![Value::Null; *i];
            a.push(acc);
            Value::Array(a)
        }
    })
}

/// Build the user's overlay from `-f` files (in order) then `--set` expressions (in order).
pub fn overlay_from(
    schema: &Value,
    files: &[impl AsRef<Path>],
    sets: &[String],
) -> anyhow::Result<Value> {
    let mut overlay = Value::Object(Map::new());
    for f in files {
        let path = f.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Exit::bad_input(format!("-f {}: cannot read: {e}", path.display())))?;
        let tree: Value = parse_yaml(path, &text)?;
        if tree.is_null() {
            continue;
        }
        if !tree.is_object() {
            return Err(Exit::bad_input(format!(
                "-f {}: a values file must be a mapping",
                path.display()
            ))
            .into());
        }
        validate(schema, &tree)
            .map_err(|e| Exit::bad_input(format!("-f {}: {e}", path.display())))?;
        merge(&mut overlay, &tree);
    }
    for s in sets {
        apply_set(schema, &mut overlay, s).map_err(Exit::bad_input)?;
    }
    Ok(overlay)
}

/// Every leaf as (dotted path, value), sorted: the unit of value diffs.
pub fn leaves(tree: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    collect(tree, &mut Vec::new(), &mut out);
    out
}

fn collect(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                collect(v, path, out);
                path.pop();
            }
        }
        // An empty tree has no leaves; an empty mapping below the top is a value (`env: {}`).
        Value::Object(_) if path.is_empty() => {}
        _ => out.push((dotted(path), v.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "global": {"tag": "1.7.8", "proxy": {"holdApplicationUntilProxyStarts": false}},
            "pilot": {"replicaCount": 1, "traceSampling": 1.0, "env": {}},
            "gateways": {"ingress": {"ports": [{"name": "http", "port": 80}]}}
        })
    }

    #[test]
    fn set_parses_typed_values() {
        let mut o = json!({});
        apply_set(&schema(), &mut o, "pilot.replicaCount=3").unwrap();
        apply_set(
            &schema(),
            &mut o,
            "global.proxy.holdApplicationUntilProxyStarts=true",
        )
        .unwrap();
        apply_set(&schema(), &mut o, "global.tag=1.8").unwrap();
        apply_set(&schema(), &mut o, "pilot.env.FOO=bar").unwrap();
        assert_eq!(
            o,
            json!({"pilot": {"replicaCount": 3, "env": {"FOO": "bar"}},
                   "global": {"tag": "1.8", "proxy": {"holdApplicationUntilProxyStarts": true}}})
        );
    }

    #[test]
    fn set_list_index() {
        let mut o = json!({});
        apply_set(&schema(), &mut o, "gateways.ingress.ports[1].port=8080").unwrap();
        assert_eq!(
            o,
            json!({"gateways": {"ingress": {"ports": [null, {"port": 8080}]}}})
        );
    }

    #[test]
    fn unknown_path_suggests() {
        let err = apply_set(&schema(), &mut json!({}), "pilot.replicas=3").unwrap_err();
        assert!(err.contains("unknown value `pilot.replicas`"), "{err}");
        assert!(err.contains("did you mean `replicaCount`"), "{err}");
    }

    #[test]
    fn type_mismatch_is_reported() {
        let err = apply_set(&schema(), &mut json!({}), "pilot.replicaCount=many").unwrap_err();
        assert!(err.contains("must be a number"), "{err}");
    }

    #[test]
    fn missing_equals_is_reported() {
        assert!(
            apply_set(&schema(), &mut json!({}), "pilot.replicaCount")
                .unwrap_err()
                .contains("path=value")
        );
    }

    #[test]
    fn merge_and_leaves() {
        let mut base = schema();
        merge(&mut base, &json!({"pilot": {"replicaCount": 2}}));
        let l = leaves(&base);
        assert!(l.contains(&("pilot.replicaCount".into(), json!(2))));
        assert!(l.contains(&("pilot.env".into(), json!({}))));
        assert!(leaves(&json!({})).is_empty());
    }
}
