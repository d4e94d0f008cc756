//! Spec paths (`a.b[0].c`, `a.b[name:x].c`), `--set` values, and the tree operations along
//! paths that reading inputs needs: look up, take out, build, merge.

use serde_json::{Map, Value};

use crate::base::values::{self, dotted, named_list};

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
    /// `[name:x]`: the item of a named list called `x`.
    Name(String),
}

/// Parse `a.b[0].c`, `a.b[name:x].c` (a `\.` keeps a dot inside a key).
pub(super) fn parse_path(path: &str) -> Result<Vec<Step>, String> {
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
                if key.is_empty() && !matches!(steps.last(), Some(Step::Index(_) | Step::Name(_))) {
                    return Err(format!("`{path}`: empty key"));
                }
                flush(&mut key, &mut steps);
            }
            '[' => {
                flush(&mut key, &mut steps);
                let inner: String = chars.by_ref().take_while(|c| *c != ']').collect();
                if let Some(name) = inner.strip_prefix("name:") {
                    steps.push(Step::Name(name.to_string()));
                } else {
                    let i = inner.parse().map_err(|_| {
                        format!("`{path}`: `[{inner}]` is neither a list index nor `[name:<name>]`")
                    })?;
                    steps.push(Step::Index(i));
                }
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
pub(super) fn parse_scalar(raw: &str) -> Value {
    serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// `[i]` into a named list of the schema means the item with that name (istioctl resolves
/// gateways by index against the profile's list).
pub(super) fn resolve_indexes(schema: &Value, steps: Vec<Step>) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    let mut cur = Some(schema);
    for s in steps {
        let s = match (&s, cur) {
            (Step::Index(i), Some(Value::Array(items))) if named_list(items) => {
                let item = items.get(*i).ok_or_else(|| {
                    format!(
                        "`{}` has no item [{i}]; it has {}",
                        steps_dotted(&out),
                        names(items).join(", ")
                    )
                })?;
                Step::Name(item["name"].as_str().unwrap_or_default().to_string())
            }
            _ => s,
        };
        cur = cur.and_then(|c| step(c, &s));
        out.push(s);
    }
    Ok(out)
}

pub(super) fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i["name"].as_str().map(|n| format!("[name:{n}]")))
        .collect()
}

fn steps_dotted(steps: &[Step]) -> String {
    dotted(&steps.iter().map(segment).collect::<Vec<_>>())
}

fn segment(s: &Step) -> String {
    match s {
        Step::Key(k) => k.clone(),
        Step::Index(i) => format!("[{i}]"),
        Step::Name(n) => format!("[name:{n}]"),
    }
}

fn step<'a>(v: &'a Value, s: &Step) -> Option<&'a Value> {
    match (s, v) {
        (Step::Key(k), Value::Object(m)) => m.get(k),
        (Step::Index(i), Value::Array(a)) => a.get(*i).or_else(|| a.first()),
        (Step::Name(n), Value::Array(a)) => a.iter().find(|x| x["name"] == n.as_str()),
        _ => None,
    }
}

pub(super) fn lookup<'a>(tree: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(tree, |cur, s| step(cur, s))
}

pub(super) fn take(tree: &mut Value, steps: &[Step]) -> Option<Value> {
    let (last, parents) = steps.split_last()?;
    let mut cur = tree;
    for s in parents {
        cur = match s {
            Step::Key(k) => cur.get_mut(k.as_str())?,
            _ => return None,
        };
    }
    match last {
        Step::Key(k) => cur.as_object_mut()?.remove(k),
        _ => None,
    }
}

pub(super) fn build(steps: &[Step], leaf: Value) -> Value {
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
        Step::Name(n) => {
            let mut item = match acc {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            item.insert("name".into(), Value::String(n.clone()));
            Value::Array(vec![Value::Object(item)])
        }
    })
}

/// Like `values::merge`, but lists built from `--set x[i]` merge element-wise (nulls are holes).
pub(super) fn merge_indexed(base: &mut Value, overlay: &mut Value) {
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
        (b @ Value::Array(_), o @ Value::Array(_))
            if b.as_array().is_some_and(|a| named_list(a))
                && o.as_array().is_some_and(|a| named_list(a)) =>
        {
            values::merge(b, o)
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
