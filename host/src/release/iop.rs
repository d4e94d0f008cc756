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
//! Here: reading the inputs and applying them. Path syntax and the tree operations along
//! paths are in `paths`, the checks against the bundle's schema in `schema`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::base::values;

mod paths;
mod schema;

use paths::{build, lookup, merge_indexed, parse_path, parse_scalar, resolve_indexes, take};
pub use schema::{Invalid, is_free_form, type_name, unknown, validate};

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
    validate(schema, &tree).map_err(|e| e.to_string())?;
    merge_indexed(overlay, &mut tree);
    Ok(())
}

/// Apply one `--set path=value` to `overlay` with no schema, for a source whose own
/// installer checks the spec (istioctl itself, `--istioctl`). A list index (`[0]`) is
/// refused: written into a spec it would replace the profile's list instead of changing
/// its item, so the item is named instead (`[name:istio-ingressgateway]`).
pub fn set_unchecked(overlay: &mut Value, expr: &str) -> Result<(), Error> {
    let fail = |message: String| Error::Set {
        expr: expr.to_string(),
        message,
    };
    let (path, raw) = expr.split_once('=').ok_or_else(|| {
        fail("expected path=value, e.g. --set values.global.proxy.logLevel=debug".into())
    })?;
    let steps = parse_path(path.trim()).map_err(fail)?;
    if steps.iter().any(|s| matches!(s, paths::Step::Index(_))) {
        return Err(fail(
            "a list item by index cannot be set here; name it, e.g. components.ingressGateways[name:istio-ingressgateway].enabled=false".into(),
        ));
    }
    merge_indexed(overlay, &mut build(&steps, parse_scalar(raw)));
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
