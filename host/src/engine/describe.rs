//! What a change to an object does, in words, for the plan a reviewer reads: the image,
//! port, replica count or webhook rule that changes, without reading every diff.
//!
//! Labels and annotations whose only change is the release's version (a version label,
//! a chart label `name-1.29.6` → `name-1.30.3`, whatever installer wrote them) are told
//! apart: an object whose only change they are is counted, not listed. Which keys those
//! are is read from the values, not from a list of names, so every installer's version
//! metadata counts, and a label that changes otherwise is a change like any other.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::base::values;

/// At most this many lines describe one object; the rest are counted.
const MAX_LINES: usize = 6;
/// A value longer than this is cut in a description.
const MAX_VALUE: usize = 60;

/// How an update reads in the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Described {
    /// Only metadata naming the version changes.
    pub version_only: bool,
    /// What changes besides that, one short line each (at most `MAX_LINES`, then a count).
    pub summary: Vec<String>,
}

/// Describe the update of `live` to `merged` on a run from version `from` to `to`.
pub fn describe(live: &Value, merged: &Value, from: Option<&str>, to: &str) -> Described {
    let (mut live, mut merged) = (live.clone(), merged.clone());
    if let Some(from) = from.filter(|f| !f.is_empty() && *f != to) {
        for at in ["/metadata", "/spec/template/metadata"] {
            drop_version_metadata(&mut live, &mut merged, at, from, to);
        }
    }
    let mut lines = Vec::new();
    walk(&live, &merged, "", &mut lines);
    let version_only = lines.is_empty();
    let more = lines.len().saturating_sub(MAX_LINES);
    lines.truncate(MAX_LINES);
    if more > 0 {
        lines.push(format!("and {more} more (--diff changes shows them)"));
    }
    Described {
        version_only,
        summary: lines,
    }
}

/// Remove from both objects the labels and annotations under `at` whose value only moves
/// from version `from` to `to`.
fn drop_version_metadata(live: &mut Value, merged: &mut Value, at: &str, from: &str, to: &str) {
    for field in ["labels", "annotations"] {
        let path = format!("{at}/{field}");
        let (Some(old), Some(new)) = (
            live.pointer(&path).and_then(Value::as_object).cloned(),
            merged.pointer_mut(&path).and_then(Value::as_object_mut),
        ) else {
            continue;
        };
        let moved: Vec<String> = old
            .iter()
            .filter(|(k, v)| {
                let (Some(v), Some(n)) = (v.as_str(), new.get(*k).and_then(Value::as_str)) else {
                    return false;
                };
                v.contains(from) && v.replace(from, to) == n
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &moved {
            new.remove(k);
        }
        if let Some(old) = live.pointer_mut(&path).and_then(Value::as_object_mut) {
            for k in &moved {
                old.remove(k);
            }
        }
    }
}

fn walk(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => maps(a, b, path, out),
        (Value::Array(a), Value::Array(b)) if values::named_list(a) && values::named_list(b) => {
            let (a, b) = (values::by_name(a), values::by_name(b));
            for (name, item) in &b {
                let at = format!("{path}[{name}]");
                match a.get(name) {
                    None => out.push(format!("{} added", shorten(&at))),
                    Some(was) => walk(was, item, &at, out),
                }
            }
            for name in a.keys().filter(|n| !b.contains_key(*n)) {
                out.push(format!("{} removed", shorten(&format!("{path}[{name}]"))));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (Value::Array(a), Value::Array(b)) => items(a, b, path, out),
        // A file holding JSON (a ConfigMap's `values`): what changes inside it.
        (Value::String(a), Value::String(b))
            if let (Some(x), Some(y)) = (structured(a), structured(b)) =>
        {
            walk(&x, &y, path, out)
        }
        (Value::String(a), Value::String(b)) if a.contains('\n') || b.contains('\n') => {
            out.push(format!("{}: {}", shorten(path), lines_changed(a, b)))
        }
        _ => out.push(format!(
            "{}: {}",
            shorten(path),
            scalar_change(path, old, new)
        )),
    }
}

/// A list without names that changes length: the items added and removed, when few.
fn items(a: &[Value], b: &[Value], path: &str, out: &mut Vec<String>) {
    let added: Vec<&Value> = b.iter().filter(|i| !a.contains(i)).collect();
    let removed: Vec<&Value> = a.iter().filter(|i| !b.contains(i)).collect();
    if added.len() + removed.len() > 2 {
        out.push(format!(
            "{}: {} item(s) added, {} removed",
            shorten(path),
            added.len(),
            removed.len()
        ));
        return;
    }
    let line = |sign: &str, i: &Value| format!("{} {sign} {}", shorten(path), cut(&show(i)));
    out.extend(added.iter().map(|i| line("+", i)));
    out.extend(removed.iter().map(|i| line("-", i)));
}

fn maps(a: &Map<String, Value>, b: &Map<String, Value>, path: &str, out: &mut Vec<String>) {
    let child = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    for (k, v) in b {
        match a.get(k) {
            None => out.push(format!("{} added{}", shorten(&child(k)), brief(v))),
            Some(was) => walk(was, v, &child(k), out),
        }
    }
    for k in a.keys().filter(|k| !b.contains_key(*k)) {
        out.push(format!("{} removed", shorten(&child(k))));
    }
}

/// A list whose items all have a `name` (containers, ports, env, webhooks).
/// ` (value)` for an added scalar, nothing for an added structure.
fn brief(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => String::new(),
        v => format!(" ({})", cut(&show(v))),
    }
}

/// `old → new`; an image that keeps its repository shows the repository once
/// (`pilot:1.7.8 → 1.8.6`).
fn scalar_change(path: &str, old: &Value, new: &Value) -> String {
    if path.ends_with("image")
        && let (Some(a), Some(b)) = (old.as_str(), new.as_str())
        && let (Some((repo_a, tag_a)), Some((repo_b, tag_b))) =
            (a.rsplit_once(':'), b.rsplit_once(':'))
        && repo_a == repo_b
    {
        let name = repo_a.rsplit('/').next().unwrap_or(repo_a);
        return format!("{name}:{tag_a} → {tag_b}");
    }
    format!("{} → {}", cut(&show(old)), cut(&show(new)))
}

/// A text that is a JSON mapping or list, parsed.
fn structured(text: &str) -> Option<Value> {
    let t = text.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// A multi-line text (a ConfigMap's file) by how many of its lines change.
fn lines_changed(a: &str, b: &str) -> String {
    let diff = similar::TextDiff::from_lines(a, b);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    format!(
        "{removed} line(s) removed, {added} added of {}",
        b.lines().count()
    )
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.replace('\n', "⏎"),
        v => v.to_string(),
    }
}

fn cut(s: &str) -> String {
    if s.chars().count() <= MAX_VALUE {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_VALUE).collect();
    format!("{head}…")
}

/// A path as a reviewer reads it: a workload's pod template without its wrapping
/// (`containers[discovery].image`), and a deep path with its middle left out.
fn shorten(path: &str) -> String {
    let path = path
        .strip_prefix("spec.template.spec.")
        .map(str::to_string)
        .or_else(|| {
            path.strip_prefix("spec.template.")
                .map(|p| format!("template.{p}"))
        })
        .unwrap_or_else(|| path.to_string());
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() <= 6 {
        return path;
    }
    format!(
        "{}.….{}",
        parts[..2].join("."),
        parts[parts.len() - 3..].join(".")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(version: &str, image: &str, ports: Value) -> Value {
        json!({"metadata": {"name": "istiod", "labels": {"app": "istiod", "operator.istio.io/version": version, "helm.sh/chart": format!("istiod-{version}")}},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "istiod", "app.kubernetes.io/version": version}},
                "spec": {"containers": [{"name": "discovery", "image": image, "ports": ports}]}}}})
    }

    #[test]
    fn version_metadata_alone_is_told_apart() {
        let ports = json!([{"name": "grpc", "containerPort": 15010}]);
        let old = deployment("1.7.8", "docker.io/istio/pilot:1.7.8", ports.clone());
        let new = deployment("1.8.6", "docker.io/istio/pilot:1.7.8", ports);
        let d = describe(&old, &new, Some("1.7.8"), "1.8.6");
        assert!(d.version_only, "{d:?}");
        assert!(d.summary.is_empty());
        // Without knowing the installed version, the labels are changes like any other.
        assert!(!describe(&old, &new, None, "1.8.6").version_only);
    }

    #[test]
    fn substantive_changes_read_as_what_changes() {
        let old = deployment(
            "1.7.8",
            "docker.io/istio/pilot:1.7.8",
            json!([{"name": "grpc", "containerPort": 15010}]),
        );
        let mut new = deployment(
            "1.8.6",
            "docker.io/istio/pilot:1.8.6",
            json!([{"name": "grpc", "containerPort": 15010}, {"name": "tcp-istiod", "containerPort": 15012}]),
        );
        new["spec"]["replicas"] = json!(2);
        new["metadata"]["labels"]["istio.io/rev"] = json!("canary");
        let d = describe(&old, &new, Some("1.7.8"), "1.8.6");
        assert!(!d.version_only);
        assert_eq!(
            d.summary,
            [
                "metadata.labels.istio.io/rev added (canary)",
                "spec.replicas: 1 → 2",
                "containers[discovery].image: pilot:1.7.8 → 1.8.6",
                "containers[discovery].ports[tcp-istiod] added",
            ]
        );
    }

    #[test]
    fn files_and_unnamed_items_read_as_what_changes() {
        let old = json!({"data": {"mesh": "a: 1\nb: 2\n", "values": r#"{"global": {"tag": "1.7.8"}}"#}, "ports": [{"containerPort": 80}]});
        let new = json!({"data": {"mesh": "a: 1\nb: 3\nc: 4\n", "values": r#"{"global": {"tag": "1.8.6"}}"#}, "ports": [{"containerPort": 80}, {"containerPort": 15012}]});
        assert_eq!(
            describe(&old, &new, None, "2").summary,
            [
                "data.mesh: 1 line(s) removed, 2 added of 3",
                "data.values.global.tag: 1.7.8 → 1.8.6",
                r#"ports + {"containerPort":15012}"#
            ]
        );
    }

    #[test]
    fn long_descriptions_are_counted() {
        let old = json!({"data": {}});
        let new = json!({"data": (0..10).map(|i| (format!("k{i}"), json!(i))).collect::<Map<String, Value>>()});
        let d = describe(&old, &new, None, "2");
        assert_eq!(d.summary.len(), MAX_LINES + 1);
        assert_eq!(
            d.summary[MAX_LINES],
            "and 4 more (--diff changes shows them)"
        );
    }
}
