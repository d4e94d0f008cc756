//! The input language: istioctl's `IstioOperator`.
//!
//! meshup replaces `istioctl install`/`upgrade`, so it takes what their users already have:
//! `-f` IstioOperator files (`install.istio.io/v1alpha1`, several, merged in order) and
//! `--set` with istioctl's paths (`profile`, `hub`, `tag`, `meshConfig.*`, `values.*`,
//! `components.<c>.enabled`, `components.<c>.k8s.*`, gateways by index or by name as
//! `components.ingressGateways[0]` / `components.ingressGateways[name:istio-ingressgateway]`).
//!
//! Design: one tree, in one language. A bundle's profiles *are* IstioOperator specs (what
//! `istioctl profile dump` prints), its templates read `hub`, `tag`, `meshConfig`, `values`
//! and `components` from the merged spec, and the user's overlay, history records, plans
//! and the policy context all carry spec trees and spec paths. The alternative, a
//! translation layer from IstioOperator into a private values tree (as istioctl's own
//! `values`/`k8s` translator does), would give meshup two languages: users would read
//! findings and suggestions in one and type inputs in the other, and reading istioctl's
//! `installed-state` would need the translation run backwards. The one translation kept is
//! istioctl's for *legacy* paths (`values.global.hub` → `hub`, `values.pilot.replicaCount`
//! → `components.pilot.k8s.replicaCount`, ...): each bundle lists those of its release as
//! `aliases`, and inputs and installed-state are normalised through them, so a spec path
//! has one meaning.
//!
//! Every path must exist in the bundle's default profile with the same type, except the
//! Kubernetes settings of a component (`k8s.*`, istioctl's `KubernetesResourcesSpec`: the
//! field names are checked, the contents are Kubernetes objects) and free-form maps
//! (an empty mapping or list in the profile, `proxyMetadata`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::base::values::{self, dotted, is_k8s_field, named_list};

pub const API_VERSION: &str = "install.istio.io/v1alpha1";
pub const KIND: &str = "IstioOperator";

/// istioctl's legacy spelling of a path and the spec path it means (bundle.yaml `aliases`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    pub from: String,
    pub to: String,
    /// The chart's own default at `from`: istioctl's installed-state carries it whether or
    /// not the user set it, so there it says nothing about what the user set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// Whose tree `normalize` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The user's own input: every value in it was typed.
    User,
    /// istioctl's installed-state: expanded with the charts' defaults.
    InstalledState,
}

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

/// IstioOperator input that cannot be used: always the user's (exit 2), naming where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `-f` file that cannot be read, is not an IstioOperator, or sets what the
    /// release does not have.
    #[error("-f {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Yaml(#[from] crate::base::yaml::Error),
    /// A `--set path=value` that does not apply.
    #[error("--set {expr}: {message}")]
    Set { expr: String, message: String },
}

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

/// The user's inputs in spec form: the profile they chose (if any) and the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    pub profile: Option<String>,
    pub overlay: Value,
}

/// Build the user's overlay from `-f` IstioOperator files (in order, merged by the
/// installer's `rule`) then `--set` (in order), validated against `schema` (the bundle's
/// default profile over its charts' defaults).
pub fn overlay_from(
    schema: &Value,
    aliases: &[Alias],
    rule: &values::MergeRule,
    files: &[impl AsRef<Path>],
    sets: &[String],
) -> Result<UserInput, Error> {
    let mut overlay = Value::Object(Map::new());
    for f in files {
        let path = f.as_ref();
        let spec = normalize(&read_file(path)?, aliases, Source::User);
        validate(schema, &spec).map_err(|e| Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        rule.merge(&mut overlay, &spec);
    }
    for s in sets {
        apply_set(schema, aliases, &mut overlay, s).map_err(|message| Error::Set {
            expr: s.clone(),
            message,
        })?;
    }
    let top = overlay.as_object_mut();
    let profile = top.and_then(|m| {
        m.remove("revision");
        m.remove("profile")
    });
    let profile = profile.and_then(|p| p.as_str().map(str::to_string));
    Ok(UserInput { profile, overlay })
}

/// The `spec` of an IstioOperator file.
pub fn read_file(path: &Path) -> Result<Value, Error> {
    let file_error = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
    let doc: Value = crate::base::yaml::parse(path, &text)?;
    let bad = |what: String| {
        file_error(format!(
            "{what}; -f takes IstioOperator files (apiVersion: {API_VERSION}, kind: {KIND}, \
             with the values under spec), as istioctl does"
        ))
    };
    if doc.is_null() {
        return Ok(Value::Object(Map::new()));
    }
    if doc["apiVersion"] != API_VERSION || doc["kind"] != KIND {
        return Err(bad(format!(
            "not an IstioOperator (apiVersion `{}`, kind `{}`)",
            doc["apiVersion"].as_str().unwrap_or("none"),
            doc["kind"].as_str().unwrap_or("none")
        )));
    }
    match &doc["spec"] {
        Value::Null => Ok(Value::Object(Map::new())),
        spec @ Value::Object(_) => Ok(spec.clone()),
        _ => Err(bad("`spec` is not a mapping".into())),
    }
}

/// Rewrite istioctl's legacy paths (`aliases`) to their spec paths. A value already set at
/// the spec path wins, as in istioctl's translation; in an installed-state, a legacy value
/// equal to the chart's default is dropped.
pub fn normalize(spec: &Value, aliases: &[Alias], source: Source) -> Value {
    let mut out = spec.clone();
    for a in aliases {
        let Ok(from) = parse_path(&a.from) else {
            continue;
        };
        let Some(v) = take(&mut out, &from) else {
            continue;
        };
        if source == Source::InstalledState && a.default.as_ref() == Some(&v) {
            continue;
        }
        let Ok(to) = parse_path(&a.to) else { continue };
        if lookup(&out, &to).is_none() {
            merge_indexed(&mut out, &mut build(&to, v));
        }
    }
    out
}

fn take(tree: &mut Value, steps: &[Step]) -> Option<Value> {
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

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[name:x]`: the item of a named list called `x`.
    Name(String),
}

/// Parse `a.b[0].c`, `a.b[name:x].c` (a `\.` keeps a dot inside a key).
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
fn parse_scalar(raw: &str) -> Value {
    serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Apply one `--set path=value` to `overlay`, checking the path against `schema`. The
/// error says what is wrong with this one expression (the caller names it).
fn apply_set(
    schema: &Value,
    aliases: &[Alias],
    overlay: &mut Value,
    expr: &str,
) -> Result<(), String> {
    let (path, raw) = expr.split_once('=').ok_or_else(|| {
        "expected path=value, e.g. --set components.pilot.k8s.replicaCount=2".to_string()
    })?;
    let path = alias_path(path.trim(), aliases);
    let steps = parse_path(&path)?;
    let steps = resolve_indexes(schema, steps)?;
    let mut value = parse_scalar(raw);
    // A bare scalar is a string where the default is one ("--set tag=1.8" is "1.8").
    if matches!(lookup(schema, &steps), Some(Value::String(_)))
        && !value.is_string()
        && !value.is_null()
    {
        value = Value::String(raw.to_string());
    }
    let mut tree = build(&steps, value);
    validate(schema, &tree).map_err(|e| e.0)?;
    merge_indexed(overlay, &mut tree);
    Ok(())
}

/// A legacy path (or one below it) spelled as its spec path.
fn alias_path(path: &str, aliases: &[Alias]) -> String {
    for a in aliases {
        if path == a.from {
            return a.to.clone();
        }
        if let Some(rest) = path.strip_prefix(&a.from).filter(|r| r.starts_with('.')) {
            return format!("{}{rest}", a.to);
        }
    }
    path.to_string()
}

/// `[i]` into a named list of the schema means the item with that name (istioctl resolves
/// gateways by index against the profile's list).
fn resolve_indexes(schema: &Value, steps: Vec<Step>) -> Result<Vec<Step>, String> {
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

fn names(items: &[Value]) -> Vec<String> {
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

fn lookup<'a>(tree: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(tree, |cur, s| step(cur, s))
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

fn unknown<'a>(path: &[String], siblings: impl Iterator<Item = &'a str> + Clone) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "hub": "docker.io/istio", "tag": "1.8.6",
            "meshConfig": {"accessLogFile": "", "defaultConfig": {"proxyMetadata": {"DNS_AGENT": ""}}},
            "components": {
                "pilot": {"enabled": true, "k8s": {"env": [], "resources": {"requests": {"cpu": "500m"}}}},
                "ingressGateways": [{"name": "istio-ingressgateway", "enabled": true, "k8s": {}}],
                "egressGateways": [{"name": "istio-egressgateway", "enabled": false, "k8s": {}}]
            },
            "values": {"global": {"logging": {"level": "default:info"}, "proxy": {"holdApplicationUntilProxyStarts": false}},
                       "pilot": {"traceSampling": 1.0}}
        })
    }

    fn aliases() -> Vec<Alias> {
        vec![
            Alias {
                from: "values.global.hub".into(),
                to: "hub".into(),
                default: None,
            },
            Alias {
                from: "values.pilot.replicaCount".into(),
                to: "components.pilot.k8s.replicaCount".into(),
                default: Some(json!(1)),
            },
        ]
    }

    fn set(o: &mut Value, e: &str) -> Result<(), String> {
        apply_set(&schema(), &aliases(), o, e).map_err(|message| {
            Error::Set {
                expr: e.into(),
                message,
            }
            .to_string()
        })
    }

    #[test]
    fn istioctl_paths_set_typed_values() {
        let mut o = json!({});
        set(&mut o, "components.pilot.k8s.replicaCount=2").unwrap();
        set(&mut o, "values.pilot.traceSampling=5.0").unwrap();
        set(
            &mut o,
            "values.global.proxy.holdApplicationUntilProxyStarts=true",
        )
        .unwrap();
        set(&mut o, "tag=1.9").unwrap();
        set(
            &mut o,
            "meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_CAPTURE=true",
        )
        .unwrap();
        set(&mut o, "components.pilot.k8s.env[0].name=FOO").unwrap();
        set(&mut o, "components.pilot.k8s.env[0].value=bar").unwrap();
        assert_eq!(o["components"]["pilot"]["k8s"]["replicaCount"], 2);
        assert_eq!(o["values"]["pilot"]["traceSampling"], 5.0);
        assert_eq!(o["tag"], "1.9");
        assert_eq!(
            o["components"]["pilot"]["k8s"]["env"],
            json!([{"name": "FOO", "value": "bar"}])
        );
        assert_eq!(
            o["meshConfig"]["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"],
            true
        );
    }

    #[test]
    fn gateways_by_index_and_by_name() {
        let mut o = json!({});
        set(&mut o, "components.egressGateways[0].enabled=true").unwrap();
        set(
            &mut o,
            "components.ingressGateways[name:istio-ingressgateway].k8s.replicaCount=3",
        )
        .unwrap();
        assert_eq!(
            o["components"]["egressGateways"],
            json!([{"name": "istio-egressgateway", "enabled": true}])
        );
        assert_eq!(
            o["components"]["ingressGateways"],
            json!([{"name": "istio-ingressgateway", "k8s": {"replicaCount": 3}}])
        );
        let err = set(&mut o, "components.ingressGateways[1].enabled=true").unwrap_err();
        assert!(err.contains("[name:istio-ingressgateway]"), "{err}");
        let err = set(
            &mut o,
            "components.ingressGateways[name:istio-ingresgateway].enabled=true",
        )
        .unwrap_err();
        assert!(
            err.contains("did you mean `components.ingressGateways[name:istio-ingressgateway]`"),
            "{err}"
        );
    }

    #[test]
    fn legacy_paths_are_aliased() {
        let mut o = json!({});
        set(&mut o, "values.pilot.replicaCount=2").unwrap();
        set(&mut o, "values.global.hub=example.com/istio").unwrap();
        assert_eq!(o["components"]["pilot"]["k8s"]["replicaCount"], 2);
        assert_eq!(o["hub"], "example.com/istio");
        // The spec path wins over the legacy one in a whole tree.
        let spec =
            json!({"hub": "a", "values": {"global": {"hub": "b"}, "pilot": {"replicaCount": 3}}});
        let n = normalize(&spec, &aliases(), Source::User);
        assert_eq!(
            n,
            json!({"hub": "a", "values": {"global": {}, "pilot": {}},
                   "components": {"pilot": {"k8s": {"replicaCount": 3}}}})
        );
        // In an installed-state, the chart's own default was not the user's doing.
        let state = json!({"values": {"pilot": {"replicaCount": 1}}});
        assert_eq!(
            normalize(&state, &aliases(), Source::InstalledState),
            json!({"values": {"pilot": {}}})
        );
        assert_eq!(
            normalize(&state, &aliases(), Source::User),
            json!({"values": {"pilot": {}}, "components": {"pilot": {"k8s": {"replicaCount": 1}}}})
        );
    }

    #[test]
    fn unknown_path_names_the_nearest_valid_one() {
        let err = set(&mut json!({}), "components.pilot.k8s.replicas=3").unwrap_err();
        assert!(
            err.contains("did you mean `components.pilot.k8s.replicaCount`"),
            "{err}"
        );
        let err = set(&mut json!({}), "value.pilot.traceSampling=3").unwrap_err();
        assert!(err.contains("did you mean `values`"), "{err}");
        let err = set(&mut json!({}), "values.pilot.traceSampl=3").unwrap_err();
        assert!(
            err.contains("did you mean `values.pilot.traceSampling`"),
            "{err}"
        );
    }

    #[test]
    fn type_mismatch_names_the_expected_type() {
        let err = set(&mut json!({}), "components.pilot.k8s.replicaCount=many").unwrap_err();
        assert!(err.contains("must be a number"), "{err}");
        let err = set(&mut json!({}), "values.pilot.traceSampling=x").unwrap_err();
        assert!(err.contains("must be a number"), "{err}");
        let err = set(&mut json!({}), "components.pilot.enabled=3").unwrap_err();
        assert!(err.contains("must be a boolean"), "{err}");
    }

    #[test]
    fn revision_is_refused_with_the_reason() {
        let err = set(&mut json!({}), "revision=canary").unwrap_err();
        assert!(err.contains("in place") && err.contains("canary"), "{err}");
        // What istioctl writes for an in-place install is fine.
        set(&mut json!({}), "revision=").unwrap();
    }

    #[test]
    fn files_must_be_istio_operators() {
        let dir = std::env::temp_dir().join(format!("meshup-iop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("iop.yaml");
        std::fs::write(
            &good,
            "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  profile: demo\n  values:\n    pilot:\n      traceSampling: 5.0\n",
        )
        .unwrap();
        let bad = dir.join("values.yaml");
        std::fs::write(&bad, "pilot:\n  traceSampling: 5.0\n").unwrap();
        let got = overlay_from(
            &schema(),
            &aliases(),
            &values::MergeRule::default(),
            &[&good],
            &[],
        )
        .unwrap();
        assert_eq!(got.profile.as_deref(), Some("demo"));
        assert_eq!(
            got.overlay,
            json!({"values": {"pilot": {"traceSampling": 5.0}}})
        );
        let err = format!(
            "{:#}",
            overlay_from(
                &schema(),
                &aliases(),
                &values::MergeRule::default(),
                &[&bad],
                &[]
            )
            .unwrap_err()
        );
        assert!(err.contains("not an IstioOperator"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn free_form_paths() {
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert!(is_free_form(&p("components.pilot.k8s.resources")));
        assert!(is_free_form(&p("meshConfig.defaultConfig.proxyMetadata")));
        assert!(!is_free_form(&p("components.pilot.k8s")));
        assert!(!is_free_form(&p("values.pilot")));
    }
}
