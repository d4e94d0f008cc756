//! Helm values per chart release: the charts' defaults, and the user's `-f RELEASE=FILE`
//! and `--set RELEASE:path=value`, checked against the chart (its `values.schema.json`
//! where it has one, its `values.yaml` tree otherwise, with Istio's
//! `_internal_defaults_do_not_set` keys taken as top-level ones, which is how users set
//! them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::chart::Chart;
use crate::base::values;
use crate::release::iop::{type_name, unknown};
use crate::release::source::Inputs;

/// Istio's charts keep their defaults here so that Helm's coalescing does not fight the
/// charts' profiles; users set the keys at the top level.
const INTERNAL: &str = "_internal_defaults_do_not_set";

/// Values that cannot be used (the user's input: exit 2), naming where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{given}: with --charts, -f takes RELEASE=FILE and --set takes RELEASE:path=value, for one of the releases {}",
        known.join(", ")
    )]
    Syntax { given: String, known: Vec<String> },
    #[error("{given}: no release `{release}`; the releases are {}", known.join(", "))]
    Release {
        given: String,
        release: String,
        known: Vec<String>,
    },
    #[error("-f {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{given}: {message}")]
    Invalid { given: String, message: String },
}

/// A chart's defaults: `values.yaml` with Istio's internal defaults lifted to the top.
pub fn defaults(chart: &Chart) -> Value {
    let mut top = chart.values.clone();
    let internal = top.as_object_mut().and_then(|m| m.remove(INTERNAL));
    match internal {
        Some(mut d) => {
            values::merge(&mut d, &top);
            d
        }
        None => top,
    }
}

/// The user's values of this run, per release (`{release: values}`): `-f` files in order,
/// then `--set`, each checked against its release's chart.
pub fn user_values(
    names: &[&str],
    charts: &BTreeMap<&str, &Chart>,
    inputs: &Inputs,
) -> Result<Value, Error> {
    let known = || names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let release_of = |given: &str, release: &str| -> Result<(), Error> {
        if names.contains(&release) {
            return Ok(());
        }
        Err(Error::Release {
            given: given.into(),
            release: release.into(),
            known: known(),
        })
    };
    let mut out = Map::new();
    for f in &inputs.value_files {
        let given = f.display().to_string();
        let (release, file) = given.split_once('=').ok_or_else(|| Error::Syntax {
            given: format!("-f {given}"),
            known: known(),
        })?;
        release_of(&format!("-f {given}"), release)?;
        let tree = read_file(&PathBuf::from(file))?;
        check_tree(charts[release], &tree, &mut Vec::new()).map_err(|message| Error::File {
            path: file.into(),
            message: format!("release {release}: {message}"),
        })?;
        values::merge(
            out.entry(release).or_insert(Value::Object(Map::new())),
            &tree,
        );
    }
    for s in &inputs.set {
        let given = format!("--set {s}");
        let (release, expr) = s.split_once(':').ok_or_else(|| Error::Syntax {
            given: given.clone(),
            known: known(),
        })?;
        release_of(&given, release)?;
        let (path, raw) = expr.split_once('=').ok_or_else(|| Error::Syntax {
            given: given.clone(),
            known: known(),
        })?;
        let path = split_path(path);
        let value = scalar(raw);
        check_path(charts[release], &path, &value).map_err(|message| Error::Invalid {
            given: given.clone(),
            message,
        })?;
        let slot = out.entry(release).or_insert(Value::Object(Map::new()));
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        values::insert(slot, &refs, value);
    }
    if inputs.profile.is_some() {
        return Err(Error::Invalid {
            given: "--profile".into(),
            message: "with --charts, a profile is a value of a release: --set istiod:profile=NAME"
                .into(),
        });
    }
    Ok(Value::Object(out))
}

fn read_file(path: &PathBuf) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let tree: Value = crate::base::yaml::parse(path, &text).map_err(|e| Error::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    match tree {
        Value::Null => Ok(Value::Object(Map::new())),
        t @ Value::Object(_) => Ok(t),
        _ => Err(Error::File {
            path: path.clone(),
            message: "a values file is a mapping of values".into(),
        }),
    }
}

/// `a.b\.c.d` → `["a", "b.c", "d"]` (Helm's escape for dots in keys).
fn split_path(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                out.last_mut().unwrap_or(&mut String::new()).push('.');
            }
            '.' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

/// A `--set` value as Helm reads it: booleans, whole numbers and `null`, else a string
/// (`1.29` stays a string, as `compatibilityVersion` wants it).
fn scalar(raw: &str) -> Value {
    match raw {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => raw
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.into())),
    }
}

/// Every leaf of a values file, checked like a `--set` of it.
fn check_tree(chart: &Chart, tree: &Value, path: &mut Vec<String>) -> Result<(), String> {
    match tree {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                check_tree(chart, v, path)?;
                path.pop();
            }
            Ok(())
        }
        leaf => check_path(chart, path, leaf),
    }
}

/// Whether `path` exists in the chart and takes `value`.
fn check_path(chart: &Chart, path: &[String], value: &Value) -> Result<(), String> {
    if let [key] = path
        && PROFILE_KEYS.contains(&key.as_str())
    {
        return Ok(());
    }
    match &chart.schema {
        Some(schema) => check_schema(schema, path, value),
        None => check_defaults(&defaults(chart), path, value),
    }
}

/// Keys every Istio chart reads from the top level without a default in `values.yaml`
/// (`templates/zzz_profile.yaml`): the profile, the compatibility version, the platform.
const PROFILE_KEYS: [&str; 3] = ["profile", "compatibilityVersion", "platform"];

/// Against `values.yaml`: every key down to a leaf exists, unless a mapping on the way is
/// empty (a free-form map such as `env: {}`); a leaf takes its default's type.
fn check_defaults(tree: &Value, path: &[String], value: &Value) -> Result<(), String> {
    let mut at = tree;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(m) = at else {
            return Err(format!(
                "`{}` is {}, not a mapping",
                values::dotted(&path[..i]),
                type_name(at)
            ));
        };
        if m.is_empty() {
            return Ok(());
        }
        match m.get(key) {
            Some(v) => at = v,
            None => return Err(unknown(&path[..=i], m.keys().map(String::as_str))),
        }
    }
    same_type(path, at, value)
}

/// Against `values.schema.json` (the gateway chart's): properties down to the leaf, types
/// as the schema says; an object without `properties` is free-form.
fn check_schema(schema: &Value, path: &[String], value: &Value) -> Result<(), String> {
    let root = schema.pointer("/$defs/values").unwrap_or(schema);
    let mut at = root;
    for (i, key) in path.iter().enumerate() {
        let Some(props) = at.get("properties").and_then(Value::as_object) else {
            return Ok(());
        };
        match props.get(key) {
            Some(p) => at = p,
            None => return Err(unknown(&path[..=i], props.keys().map(String::as_str))),
        }
    }
    let types: Vec<&str> = match &at["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let fits = |t: &&str| match *t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        _ => true,
    };
    if value.is_null() || types.iter().any(fits) {
        return Ok(());
    }
    Err(format!(
        "`{}` takes {}, not {}",
        values::dotted(path),
        types.join(" or "),
        type_name(value)
    ))
}

fn same_type(path: &[String], default: &Value, value: &Value) -> Result<(), String> {
    let kind = |v: &Value| std::mem::discriminant(v);
    if default.is_null() || value.is_null() || kind(default) == kind(value) {
        return Ok(());
    }
    // Helm reads `--set x=5` as a number where the chart's default is a quoted "5".
    if default.is_string() && (value.is_number() || value.is_boolean()) {
        return Ok(());
    }
    Err(format!(
        "`{}` takes {} (its default is {default}), not {}",
        values::dotted(path),
        type_name(default),
        type_name(value)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart(values: Value, schema: Option<Value>) -> Chart {
        Chart {
            path: "x".into(),
            metadata: super::super::chart::Metadata {
                name: "istiod".into(),
                version: "1.30.3".into(),
                app_version: Some("1.30.3".into()),
            },
            values,
            schema,
            compatibility: Default::default(),
        }
    }

    #[test]
    fn paths_are_checked_against_the_charts_values() {
        let c = chart(
            json!({"_internal_defaults_do_not_set": {"pilot": {"autoscaleMin": 1, "env": {}}}, "global": {"hub": "x"}}),
            None,
        );
        let names = ["istiod"];
        let charts: BTreeMap<&str, &Chart> = [("istiod", &c)].into_iter().collect();
        let set = |s: &str| Inputs {
            set: vec![s.to_string()],
            ..Default::default()
        };
        let ok = user_values(&names, &charts, &set("istiod:pilot.autoscaleMin=2")).unwrap();
        assert_eq!(ok, json!({"istiod": {"pilot": {"autoscaleMin": 2}}}));
        // Free-form maps take any key.
        user_values(&names, &charts, &set("istiod:pilot.env.FOO=bar")).unwrap();
        let typo = user_values(&names, &charts, &set("istiod:pilot.autoscaleMn=2")).unwrap_err();
        assert!(
            typo.to_string()
                .contains("did you mean `pilot.autoscaleMin`"),
            "{typo}"
        );
        let ty = user_values(&names, &charts, &set("istiod:pilot.autoscaleMin=x")).unwrap_err();
        assert!(ty.to_string().contains("takes a number"), "{ty}");
        let rel = user_values(&names, &charts, &set("istio:pilot.autoscaleMin=2")).unwrap_err();
        assert!(rel.to_string().contains("the releases are istiod"), "{rel}");
        let syntax = user_values(&names, &charts, &set("pilot.autoscaleMin=2")).unwrap_err();
        assert!(
            syntax.to_string().contains("RELEASE:path=value"),
            "{syntax}"
        );
    }

    #[test]
    fn a_schema_decides_where_the_chart_has_one() {
        let schema = json!({"$defs": {"values": {"type": "object", "properties": {
            "replicaCount": {"type": ["integer", "null"]},
            "podAnnotations": {"type": "object"}}}}, "$ref": "#/$defs/values"});
        let c = chart(json!({}), Some(schema));
        assert!(check_path(&c, &["replicaCount".into()], &json!(2)).is_ok());
        assert!(check_path(&c, &["replicaCount".into()], &json!("x")).is_err());
        assert!(check_path(&c, &["podAnnotations".into(), "a.b/c".into()], &json!("1")).is_ok());
        let e = check_path(&c, &["replicas".into()], &json!(2)).unwrap_err();
        assert!(e.contains("did you mean `replicaCount`"), "{e}");
        assert_eq!(
            split_path(r"podAnnotations.sidecar\.istio\.io/inject"),
            vec!["podAnnotations", "sidecar.istio.io/inject"]
        );
    }
}
