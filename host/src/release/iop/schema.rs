//! Validation of a spec against the schema (the bundle's default profile over its charts'
//! defaults).
//!
//! Every path must exist in the bundle's default profile with the same type, except the
//! Kubernetes settings of a component (`k8s.*`, istioctl's `KubernetesResourcesSpec`: the
//! field names are checked, the contents are Kubernetes objects) and free-form maps
//! (an empty mapping or list in the profile, `proxyMetadata`).

use serde_json::Value;

use super::paths::names;
use crate::base::values::{dotted, is_k8s_field, named_list};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    List,
    Mapping,
}

/// `components.<c>.k8s.*`: the fields of istioctl's KubernetesResourcesSpec the bundles
/// render (an accepted field that nothing renders would be a silent no-op).
const K8S_FIELDS: &[(&str, Kind)] = &[
    ("affinity", Kind::Mapping),
    ("env", Kind::List),
    ("hpaSpec", Kind::Mapping),
    ("nodeSelector", Kind::Mapping),
    ("podAnnotations", Kind::Mapping),
    ("podDisruptionBudget", Kind::Mapping),
    ("readinessProbe", Kind::Mapping),
    ("replicaCount", Kind::Number),
    ("resources", Kind::Mapping),
    ("service", Kind::Mapping),
    ("serviceAnnotations", Kind::Mapping),
    ("strategy", Kind::Mapping),
    ("tolerations", Kind::List),
];

/// A spec that sets a path the schema does not have, or a value of the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

/// String maps of the IstioOperator/MeshConfig API whose keys are the user's own.
const FREE_MAPS: &[&str] = &["proxyMetadata"];

const REVISION: &str = "`revision` is not supported: meshup upgrades the control plane in place \
    (the default revision), as `istioctl upgrade` does; a revision would install a second \
    control plane beside it (a canary upgrade). Remove `revision` from the IstioOperator file \
    or --set.";

/// Whether everything below `path` is free-form (compared and replaced as a whole).
pub fn is_free_form(path: &[String]) -> bool {
    is_k8s_field(path) || path.last().is_some_and(|l| FREE_MAPS.contains(&l.as_str()))
}

/// Check that every path of `overlay` is one `schema` has, with a compatible type.
pub fn validate(schema: &Value, overlay: &Value) -> Result<(), Invalid> {
    validate_spec(schema, overlay).map_err(Invalid)
}

fn validate_spec(schema: &Value, overlay: &Value) -> Result<(), String> {
    if let Some(top) = overlay.as_object() {
        // An empty revision (what istioctl writes for an in-place install) is the default one.
        if top
            .get("revision")
            .is_some_and(|r| !r.is_null() && !matches!(r.as_str(), Some("" | "default")))
        {
            return Err(REVISION.into());
        }
        if let Some(p) = top
            .get("profile")
            .filter(|p| !p.is_string() && !p.is_null())
        {
            return Err(format!("`profile` must be a string, not {}", type_name(p)));
        }
        let mut rest = top.clone();
        rest.remove("profile");
        rest.remove("revision");
        return validate_at(schema, &Value::Object(rest), &mut Vec::new());
    }
    validate_at(schema, overlay, &mut Vec::new())
}

fn validate_at(schema: &Value, overlay: &Value, path: &mut Vec<String>) -> Result<(), String> {
    if path.last().is_some_and(|p| p == "k8s") {
        return validate_k8s(overlay, path);
    }
    match (schema, overlay) {
        (_, Value::Null) => Ok(()),
        (s, o) if FREE_MAPS.contains(&path.last().map(String::as_str).unwrap_or("")) => {
            check_type(path, s, o)
        }
        // An empty mapping or list in the defaults is free-form (labels, annotations, env).
        (Value::Object(s), o) if s.is_empty() => check_type(path, schema, o),
        (Value::Array(s), o) if s.is_empty() => check_type(path, schema, o),
        (Value::Object(s), Value::Object(o)) => {
            for (k, v) in o {
                path.push(k.clone());
                let Some(sub) = s.get(k) else {
                    return Err(unknown(path, s.keys().map(String::as_str)));
                };
                validate_at(sub, v, path)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(s), Value::Array(o)) if named_list(s) => {
            for item in o {
                let Some(name) = item["name"].as_str() else {
                    return Err(format!(
                        "`{}`: every item needs a `name` (one of {})",
                        dotted(path),
                        names(s).join(", ")
                    ));
                };
                path.push(format!("[name:{name}]"));
                let Some(item_schema) = s.iter().find(|x| x["name"] == name) else {
                    let known = names(s);
                    return Err(unknown(path, known.iter().map(String::as_str)));
                };
                let mut rest = item.clone();
                rest.as_object_mut().map(|m| m.remove("name"));
                validate_at(item_schema, &rest, path)?;
                path.pop();
            }
            Ok(())
        }
        (Value::Array(s), Value::Array(o)) => {
            for (i, v) in o.iter().enumerate() {
                path.push(format!("[{i}]"));
                validate_at(&s[0], v, path)?;
                path.pop();
            }
            Ok(())
        }
        (s, o) => check_type(path, s, o),
    }
}

fn validate_k8s(overlay: &Value, path: &mut Vec<String>) -> Result<(), String> {
    let Some(o) = overlay.as_object() else {
        return Err(format!(
            "`{}` must be a mapping, not {}",
            dotted(path),
            type_name(overlay)
        ));
    };
    for (k, v) in o {
        path.push(k.clone());
        let Some((_, kind)) = K8S_FIELDS.iter().find(|(f, _)| f == k) else {
            return Err(unknown(path, K8S_FIELDS.iter().map(|(f, _)| *f)));
        };
        let ok = match kind {
            Kind::Number => v.is_number(),
            Kind::List => v.is_array(),
            Kind::Mapping => v.is_object(),
        } || v.is_null();
        if !ok {
            let want = match kind {
                Kind::Number => "a number",
                Kind::List => "a list",
                Kind::Mapping => "a mapping",
            };
            return Err(format!(
                "`{}` must be {want}, not {} ({v})",
                dotted(path),
                type_name(v)
            ));
        }
        path.pop();
    }
    Ok(())
}

fn check_type(path: &[String], schema: &Value, given: &Value) -> Result<(), String> {
    let same = matches!(
        (schema, given),
        (Value::Bool(_), Value::Bool(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::String(_), Value::String(_))
            | (Value::Array(_), Value::Array(_))
            | (Value::Object(_), Value::Object(_))
            | (Value::Null, _)
            | (_, Value::Null)
    );
    if same {
        return Ok(());
    }
    Err(format!(
        "`{}` must be {} (the default is {}), not {} ({})",
        dotted(path),
        type_name(schema),
        schema,
        type_name(given),
        given
    ))
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

pub fn unknown<'a>(path: &[String], siblings: impl Iterator<Item = &'a str> + Clone) -> String {
    let last = path.last().map(String::as_str).unwrap_or("");
    let parent = &path[..path.len() - 1];
    let mut msg = format!("unknown value `{}`", dotted(path));
    if let Some(close) = closest(last, siblings.clone()) {
        let mut p = parent.to_vec();
        p.push(close.to_string());
        msg.push_str(&format!(" (did you mean `{}`?)", dotted(&p)));
    }
    let under = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("under `{}`", dotted(parent))
    };
    let keys: Vec<&str> = siblings.collect();
    msg.push_str(&format!("; known values {under}: {}", keys.join(", ")));
    msg
}

/// The candidate with the smallest edit distance, if it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (similar_distance(word, c), c))
        .filter(|(d, c)| *d <= c.len().max(word.len()) / 3 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
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
