//! What was set at install (or by hand) that this run's inputs would revert, for an install
//! whose installer remembers nothing (istioctl 1.21 and later keep no installed-state):
//! `--from-istioctl PATH [--from-manifests DIR]` names the installed release's istioctl,
//! meshup re-renders the installed release with THIS run's inputs through it, and compares
//! that with the live objects. What the inputs would not reproduce is a value set at install
//! (or a hand edit), reported per object and field, with the `--set` that keeps it where one
//! exists.
//!
//! The comparison is `kubectl diff`'s: a server-side dry-run apply of the re-rendered object
//! under istioctl's own field manager (`istio-operator`, which owns what `istioctl install`
//! applied), so a field the install set and the re-render lacks is removed, while defaults
//! and other managers' fields stay and are no noise. What istiod and the webhooks patch in
//! (`caBundle`, the validator's `failurePolicy`) and the installer's version metadata are
//! left out. The re-render takes the installed release's image tag from what runs: the tag
//! is the release, not a value someone set.
//!
//! Mapping a field back to an input: istioctl renders the merged Helm values into the
//! injector's ConfigMap (`istio-sidecar-injector`, key `values`) and the `values` ConfigMap
//! (`merged-values`, `original-values`), so a leaf that differs there IS a `values.*` path;
//! a leaf of the mesh ConfigMap (`istio`, key `mesh`) is a `meshConfig.*` path. Any other
//! field whose change is exactly such a value's change (`--proxyLogLevel=debug` →
//! `--proxyLogLevel=warning`) is kept by that value's `--set` too.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};

use crate::base::object::{Object, ObjectKey};
use crate::base::values;
use crate::cluster::client::without_server_fields;
use crate::cluster::kube::Kube;
use crate::engine::plan;
use crate::installed::state::Installed;
use crate::policy::{Finding, Severity};
use crate::release::istioctl::{Binary, Istioctl};
use crate::release::source::{Inputs, RenderContext};

/// The field manager `istioctl install` applies under: what it set is owned by it.
const ISTIOCTL_MANAGER: &str = "istio-operator";
/// At most this many reverts are reported (then a count): a wrong --from-istioctl or a
/// heavily hand-edited install must not flood the precheck.
const MAX_REVERTS: usize = 40;
/// At most this many differing fields are read from one object.
const MAX_FIELDS_PER_OBJECT: usize = 64;
/// A value longer than this is cut in a message.
const MAX_SHOWN: usize = 80;

/// `--from-istioctl PATH [--from-manifests DIR]`: the installed release's istioctl.
#[derive(Debug, Clone)]
pub struct InstalledIstioctl {
    pub istioctl: PathBuf,
    pub manifests: Option<PathBuf>,
}

/// `--from-istioctl` cannot re-render what runs (the user's input: exit 2, nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--from-manifests {}: no such directory; pass the installed release's manifests directory (istio-X/manifests)",
        .0.display()
    )]
    Manifests(PathBuf),
    #[error(
        "--from-istioctl: no control plane runs in {0}, so there is no installed release to re-render; drop --from-istioctl"
    )]
    NothingInstalled(String),
    #[error(
        "--from-istioctl {}: it is istioctl {binary}, but Deployment {deployment} was applied by istioctl {applied} (its operator.istio.io/version label); another istioctl renders differently, so every difference would read as a revert: pass the istioctl that installed it (bin/istioctl of the istio-{applied} release archive)",
        path.display()
    )]
    OtherIstioctl {
        path: PathBuf,
        binary: String,
        deployment: String,
        applied: String,
    },
}

impl InstalledIstioctl {
    /// Checked before the cluster is touched: the binary answers as an istioctl and the
    /// manifests directory exists.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.manifests.as_deref().filter(|d| !d.is_dir()) {
            return Err(Error::Manifests(dir.to_path_buf()).into());
        }
        Binary::find(&self.istioctl)
            .context("--from-istioctl (the installed release's istioctl)")?;
        Ok(())
    }
}

/// One field a run's inputs would not reproduce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revert {
    /// `ConfigMap istio-system/istio-sidecar-injector`
    pub object: String,
    /// `data.values.global.proxy.logLevel`; `(object)` when the object itself is missing.
    pub field: String,
    /// What runs (`None`: the field, or the object, is not there).
    pub live: Option<Value>,
    /// What this run's inputs render for the installed release (`None`: removed).
    pub rendered: Option<Value>,
    /// The input that keeps what runs (`--set values.global.proxy.logLevel=debug`), or how.
    pub keep: Option<String>,
}

/// Re-render the installed release with `inputs` through its own istioctl and compare with
/// what runs.
pub async fn find(
    cluster: &dyn Kube,
    from: &InstalledIstioctl,
    inputs: &Inputs,
    installed: &Installed,
) -> anyhow::Result<Vec<Revert>> {
    let running = installed
        .in_place()
        .ok_or_else(|| Error::NothingInstalled(installed.namespace.clone()))?;
    let key = ObjectKey {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(installed.namespace.clone()),
        name: running.deployment.clone(),
    };
    let istiod = cluster
        .get(&key)
        .await?
        .ok_or_else(|| Error::NothingInstalled(installed.namespace.clone()))?;
    let binary = Binary::find(&from.istioctl).context("--from-istioctl")?;
    if let Some(applied) = istiod["metadata"]["labels"]["operator.istio.io/version"].as_str()
        && applied != binary.version
    {
        return Err(Error::OtherIstioctl {
            path: from.istioctl.clone(),
            binary: binary.version,
            deployment: key.to_string(),
            applied: applied.to_string(),
        }
        .into());
    }
    // The installed release's tag, exactly as its image says (what runs is the release).
    let mut inputs = inputs.clone();
    if let Some(tag) = running_tag(&istiod) {
        inputs.set.push(format!("tag={tag}"));
    }
    let source = Istioctl::load(&from.istioctl, from.manifests.as_deref(), &inputs)
        .context("--from-istioctl: re-rendering the installed release with this run's inputs")?;
    let ctx = RenderContext {
        revision: crate::installed::state::DEFAULT_REVISION,
        kubernetes: Some(installed.kubernetes_version.trim_start_matches('v')),
        upgrade: true,
    };
    let (_, rendered, _) = plan::values_and_render(&source, &inputs, None, ctx, json!({}))
        .context("--from-istioctl: re-rendering the installed release with this run's inputs")?;
    let compared: Vec<anyhow::Result<Vec<Revert>>> = futures::stream::iter(
        rendered
            .objects
            .iter()
            // A CRD holds no value set at install; its dry run is the slowest of all.
            .filter(|o| o.kind() != "CustomResourceDefinition")
            .map(|o| compare(cluster, o)),
    )
    .buffered(8)
    .collect()
    .await;
    let mut out = Vec::new();
    for c in compared {
        out.extend(c?);
    }
    link_to_values(&mut out);
    Ok(out)
}

/// The tag of the control-plane container's image in istiod's Deployment.
fn running_tag(istiod: &Value) -> Option<String> {
    let container = &crate::release::shipped::newest()
        .discovery
        .control_plane
        .container;
    let image = istiod["spec"]["template"]["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container.as_str())?["image"]
        .as_str()?;
    meshup_vocab::version::image_tag(image).map(str::to_string)
}

/// The fields of one object that re-applying the re-render would change.
async fn compare(cluster: &dyn Kube, o: &Object) -> anyhow::Result<Vec<Revert>> {
    let key = o.key();
    let live = match cluster.get_if_served(&key).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            return Ok(vec![Revert {
                object: key.to_string(),
                field: "(object)".into(),
                live: None,
                rendered: Some(json!("created")),
                keep: None,
            }]);
        }
        // What the caller may not read, the permissions finding names.
        Err(e) if e.is_forbidden() => return Ok(vec![]),
        Err(e) => return Err(e.into()),
    };
    let merged = match cluster.apply(&o.value, true, ISTIOCTL_MANAGER).await {
        Ok(m) => m,
        // A refusal is the target plan's finding (`plan.rejected`); a dry run the caller
        // may not make, the permissions finding's.
        Err(e) if e.is_forbidden() || e.is_refusal() => return Ok(vec![]),
        Err(e) => return Err(e.into()),
    };
    let (live, merged) = (quiet(&live), quiet(&merged));
    let mut fields = Vec::new();
    walk(&live, &merged, &mut Vec::new(), &mut fields);
    fields.truncate(MAX_FIELDS_PER_OBJECT);
    let (kind, name) = (key.kind.as_str(), key.name.as_str());
    Ok(fields
        .into_iter()
        .map(|(path, live, rendered)| Revert {
            object: key.to_string(),
            keep: keep(kind, name, &path, live.as_ref()),
            field: show_path(&path),
            live,
            rendered,
        })
        .collect())
}

/// An object without what the server, istiod and the webhooks write, and without the
/// installer's version metadata (the same istioctl stamps the same, but a hand-run
/// `kubectl rollout restart` or a chart label is no value set at install).
fn quiet(v: &Value) -> Value {
    let mut v = without_server_fields(v);
    for at in ["/metadata", "/spec/template/metadata"] {
        if let Some(labels) = v
            .pointer_mut(&format!("{at}/labels"))
            .and_then(Value::as_object_mut)
        {
            for k in [
                "operator.istio.io/version",
                "app.kubernetes.io/version",
                "helm.sh/chart",
            ] {
                labels.remove(k);
            }
        }
        if let Some(notes) = v
            .pointer_mut(&format!("{at}/annotations"))
            .and_then(Value::as_object_mut)
        {
            for k in [
                "deployment.kubernetes.io/revision",
                "kubectl.kubernetes.io/last-applied-configuration",
                "kubectl.kubernetes.io/restartedAt",
            ] {
                notes.remove(k);
            }
        }
    }
    let validating = v["kind"] == "ValidatingWebhookConfiguration";
    if let Some(webhooks) = v["webhooks"].as_array_mut() {
        for w in webhooks {
            if let Some(c) = w["clientConfig"].as_object_mut() {
                c.remove("caBundle");
            }
            // istiod turns its validator to Fail once it serves (`validationController`).
            if validating && let Some(w) = w.as_object_mut() {
                w.remove("failurePolicy");
            }
        }
    }
    v
}

/// One step of a field's path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    /// An item of a list whose items have names (containers, env, ports, webhooks).
    Named(String),
    Index(usize),
}

type Field = (Vec<Step>, Option<Value>, Option<Value>);

/// Every field where `live` and `merged` differ, as deep as they differ; a text holding a
/// mapping (a ConfigMap's JSON values, its YAML mesh config) is compared inside.
fn walk(live: &Value, merged: &Value, path: &mut Vec<Step>, out: &mut Vec<Field>) {
    if live == merged || out.len() >= MAX_FIELDS_PER_OBJECT {
        return;
    }
    match (live, merged) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, av) in a {
                path.push(Step::Key(k.clone()));
                match b.get(k) {
                    Some(bv) => walk(av, bv, path, out),
                    None => one_side(av, true, path, out),
                }
                path.pop();
            }
            for (k, bv) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                path.push(Step::Key(k.clone()));
                one_side(bv, false, path, out);
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if values::named_list(a) && values::named_list(b) => {
            let (a, b) = (values::by_name(a), values::by_name(b));
            for (n, av) in &a {
                path.push(Step::Named(n.clone()));
                match b.get(n) {
                    Some(bv) => walk(av, bv, path, out),
                    None => out.push((path.clone(), Some(av.clone()), None)),
                }
                path.pop();
            }
            for (n, bv) in b.iter().filter(|(n, _)| !a.contains_key(*n)) {
                path.push(Step::Named(n.clone()));
                out.push((path.clone(), None, Some(bv.clone())));
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(Step::Index(i));
                walk(x, y, path, out);
                path.pop();
            }
        }
        (Value::String(a), Value::String(b))
            if let (Some(x), Some(y)) = (mapping(a), mapping(b)) =>
        {
            walk(&x, &y, path, out)
        }
        _ => out.push((path.clone(), Some(live.clone()), Some(merged.clone()))),
    }
}

/// A mapping only one side has, leaf by leaf (each its own input path); anything else
/// whole. `live`: the live side has it.
fn one_side(v: &Value, live: bool, path: &mut Vec<Step>, out: &mut Vec<Field>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                path.push(Step::Key(k.clone()));
                one_side(x, live, path, out);
                path.pop();
            }
        }
        _ if out.len() >= MAX_FIELDS_PER_OBJECT => {}
        v if live => out.push((path.clone(), Some(v.clone()), None)),
        v => out.push((path.clone(), None, Some(v.clone()))),
    }
}

/// A list whose items all have a `name`.
/// A text that holds a mapping (JSON or YAML, as istioctl renders a ConfigMap's values and
/// mesh config), parsed; never a Go template (the injector's `config`).
fn mapping(text: &str) -> Option<Value> {
    if !text.contains('\n') && !text.trim_start().starts_with('{') || text.contains("{{") {
        return None;
    }
    let v: Value = serde_yaml::from_str(text).ok()?;
    v.is_object().then_some(v)
}

/// `data.values.global.proxy.logLevel`, `spec.template.spec.containers[discovery].args[3]`.
fn show_path(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) if s.is_empty() => s.push_str(k),
            Step::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Step::Named(n) => s.push_str(&format!("[{n}]")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The IstioOperator path a field of `kind`/`name` renders from: the values istioctl
/// renders into the injector's and the `values` ConfigMaps, the mesh config into `istio`.
fn input_path(kind: &str, name: &str, path: &[Step]) -> Option<(String, Vec<Step>)> {
    if kind != "ConfigMap" {
        return None;
    }
    let [Step::Key(data), Step::Key(key), rest @ ..] = path else {
        return None;
    };
    if data != "data" || rest.is_empty() {
        return None;
    }
    let root = match (name, key.as_str()) {
        ("istio-sidecar-injector", "values") => "values",
        (n, "merged-values" | "original-values") if n == "values" || n.starts_with("values-") => {
            "values"
        }
        ("istio", "mesh") => "meshConfig",
        _ => return None,
    };
    Some((root.to_string(), rest.to_vec()))
}

/// The `--set` (or, for a structured value or a list item, the -f snippet) that keeps
/// `live` at this field.
fn keep(kind: &str, name: &str, path: &[Step], live: Option<&Value>) -> Option<String> {
    let (root, rest) = input_path(kind, name, path)?;
    let Some(live) = live else {
        // The install did not have it: nothing to set, dropping the input that adds it.
        return Some(format!(
            "the install did not set {}; this run's inputs add it",
            set_path(&root, &rest).unwrap_or_else(|| format!("{root}.{}", show_path(&rest)))
        ));
    };
    let value = match live {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(live.to_string()),
        _ => None,
    };
    match (set_path(&root, &rest), value) {
        (Some(p), Some(v)) => Some(format!("--set {p}={v}")),
        _ => Some(format!(
            "set {}.{} to {} in the -f IstioOperator file",
            root,
            show_path(&rest),
            cut(&live.to_string())
        )),
    }
}

/// A `--set` path for istioctl (dots inside a key escaped); none through a list by index,
/// which --set does not take.
fn set_path(root: &str, rest: &[Step]) -> Option<String> {
    let mut s = root.to_string();
    for step in rest {
        match step {
            Step::Key(k) => {
                s.push('.');
                s.push_str(&k.replace('.', "\\."));
            }
            Step::Named(_) | Step::Index(_) => return None,
        }
    }
    Some(s)
}

/// A field outside the values ConfigMaps whose change is exactly a values leaf's change
/// (the leaf's text replaced in it) is kept by the same `--set`.
fn link_to_values(reverts: &mut [Revert]) {
    let leaves: Vec<(String, String, String)> = reverts
        .iter()
        .filter_map(|r| {
            let keep = r.keep.as_deref()?.strip_prefix("--set ")?;
            match (r.live.as_ref()?, r.rendered.as_ref()?) {
                (Value::String(l), Value::String(n)) if !l.is_empty() => {
                    Some((keep.to_string(), l.clone(), n.clone()))
                }
                _ => None,
            }
        })
        .collect();
    for r in reverts.iter_mut().filter(|r| r.keep.is_none()) {
        let (Some(Value::String(live)), Some(Value::String(now))) = (&r.live, &r.rendered) else {
            continue;
        };
        if let Some((set, _, _)) = leaves
            .iter()
            .find(|(_, l, n)| live.contains(l.as_str()) && live.replace(l.as_str(), n) == *now)
        {
            r.keep = Some(format!("--set {set}"));
        }
    }
}

/// The host's findings: one warning per object and field, at most `MAX_REVERTS`.
pub fn findings(reverts: &[Revert], from: &Path) -> Vec<Finding> {
    let finding = |message: String, remediation: Option<String>, subject: Option<String>| Finding {
        policy: "host".into(),
        source: "host".into(),
        code: "plan.install-reverts".into(),
        severity: Severity::Warning,
        message,
        remediation,
        subject,
    };
    let mut out: Vec<Finding> = reverts
        .iter()
        .take(MAX_REVERTS)
        .map(|r| {
            let message = if r.field == "(object)" {
                format!(
                    "{} is not in the cluster, but this run's inputs render it for the installed release: it was turned off at install (or deleted by hand) and this run creates it",
                    r.object
                )
            } else {
                format!(
                    "{} {} is {} where it runs; this run's inputs render {} for the installed release (re-rendered by {}), so it was set at install or by hand and reverts",
                    r.object,
                    r.field,
                    shown(r.live.as_ref()),
                    shown(r.rendered.as_ref()),
                    from.display()
                )
            };
            let remediation = r.keep.clone().map(|k| format!("to keep it: {k}")).or_else(|| {
                Some("no --set renders this field alone: if it was set at install, give this run the install's -f/--set; if by hand, re-apply it after the run".into())
            });
            finding(message, remediation, Some(format!("{}:{}", r.object, r.field)))
        })
        .collect();
    if reverts.len() > MAX_REVERTS {
        out.push(finding(
            format!(
                "and {} more field(s) this run would revert (is --from-istioctl the istioctl that installed it?)",
                reverts.len() - MAX_REVERTS
            ),
            Some("see the plan's diff: --diff changes".into()),
            None,
        ));
    }
    out
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None => "(unset)".into(),
        Some(Value::String(s)) => cut(s),
        Some(v) => cut(&v.to_string()),
    }
}

fn cut(s: &str) -> String {
    let s = s.replace('\n', "⏎");
    if s.chars().count() <= MAX_SHOWN {
        return s;
    }
    let head: String = s.chars().take(MAX_SHOWN).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(live: Value, merged: Value) -> Vec<(String, Option<Value>, Option<Value>)> {
        let mut out = Vec::new();
        walk(&quiet(&live), &quiet(&merged), &mut Vec::new(), &mut out);
        out.into_iter()
            .map(|(p, l, m)| (show_path(&p), l, m))
            .collect()
    }

    fn injector(values: Value) -> Value {
        json!({"kind": "ConfigMap", "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
            "data": {"values": serde_json::to_string_pretty(&values).unwrap(), "config": "policy: enabled\n{{ .Values }}\n"}})
    }

    #[test]
    fn a_values_leaf_set_at_install_is_its_set_path() {
        let live =
            injector(json!({"global": {"proxy": {"logLevel": "debug", "image": "proxyv2"}}}));
        let merged =
            injector(json!({"global": {"proxy": {"logLevel": "warning", "image": "proxyv2"}}}));
        let got = fields(live, merged);
        assert_eq!(
            got,
            vec![(
                "data.values.global.proxy.logLevel".to_string(),
                Some(json!("debug")),
                Some(json!("warning"))
            )]
        );
        let path = vec![
            Step::Key("data".into()),
            Step::Key("values".into()),
            Step::Key("global".into()),
            Step::Key("proxy".into()),
            Step::Key("logLevel".into()),
        ];
        assert_eq!(
            keep(
                "ConfigMap",
                "istio-sidecar-injector",
                &path,
                Some(&json!("debug"))
            )
            .as_deref(),
            Some("--set values.global.proxy.logLevel=debug")
        );
        // The same field of another ConfigMap is no values path.
        assert_eq!(
            keep("ConfigMap", "other", &path, Some(&json!("debug"))),
            None
        );
    }

    #[test]
    fn what_istiod_and_the_server_write_is_no_revert() {
        let webhook = |ca: &str, policy: &str, version: &str| {
            json!({"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v", "resourceVersion": "7",
                "labels": {"operator.istio.io/version": version, "app": "istiod"}},
                "webhooks": [{"name": "w", "failurePolicy": policy, "clientConfig": {"caBundle": ca}}]})
        };
        assert!(
            fields(
                webhook("abc", "Fail", "1.30.3"),
                webhook("", "Ignore", "1.31-dev")
            )
            .is_empty()
        );
        // A label someone set is a revert like any other field.
        let mut edited = webhook("abc", "Fail", "1.30.3");
        edited["metadata"]["labels"]["team"] = json!("mesh");
        assert_eq!(
            fields(edited, webhook("", "Ignore", "1.30.3")),
            vec![(
                "metadata.labels.team".to_string(),
                Some(json!("mesh")),
                None
            )]
        );
    }

    #[test]
    fn a_workload_field_that_follows_a_value_is_kept_by_its_set() {
        let dep = |level: &str| {
            json!({"kind": "Deployment", "metadata": {"name": "gw"}, "spec": {"template": {"spec": {"containers": [
                {"name": "istio-proxy", "args": ["proxy", format!("--proxyLogLevel={level}")]}]}}}})
        };
        let mut reverts: Vec<Revert> = fields(dep("debug"), dep("warning"))
            .into_iter()
            .map(|(field, live, rendered)| Revert {
                object: "Deployment istio-system/gw".into(),
                field,
                live,
                rendered,
                keep: None,
            })
            .collect();
        assert_eq!(
            reverts[0].field,
            "spec.template.spec.containers[istio-proxy].args[1]"
        );
        reverts.push(Revert {
            object: "ConfigMap istio-system/istio-sidecar-injector".into(),
            field: "data.values.global.proxy.logLevel".into(),
            live: Some(json!("debug")),
            rendered: Some(json!("warning")),
            keep: Some("--set values.global.proxy.logLevel=debug".into()),
        });
        link_to_values(&mut reverts);
        assert_eq!(
            reverts[0].keep.as_deref(),
            Some("--set values.global.proxy.logLevel=debug")
        );
    }

    #[test]
    fn mesh_config_and_templates() {
        let mesh = |v: &str| json!({"kind": "ConfigMap", "metadata": {"name": "istio"}, "data": {"mesh": format!("accessLogFile: {v}\ndefaultConfig:\n  discoveryAddress: istiod:15012\n")}});
        let got = fields(mesh("/dev/stdout"), mesh("\"\""));
        assert_eq!(got.len(), 1, "{got:?}");
        let path = vec![
            Step::Key("data".into()),
            Step::Key("mesh".into()),
            Step::Key("accessLogFile".into()),
        ];
        assert_eq!(
            keep("ConfigMap", "istio", &path, Some(&json!("/dev/stdout"))).as_deref(),
            Some("--set meshConfig.accessLogFile=/dev/stdout")
        );
        // A Go template is text, never parsed.
        assert_eq!(mapping("a: 1\n{{ .Values }}\n"), None);
        let findings = findings(
            &[Revert {
                object: "ConfigMap istio-system/istio".into(),
                field: "data.mesh.accessLogFile".into(),
                live: Some(json!("/dev/stdout")),
                rendered: Some(json!("")),
                keep: Some("--set meshConfig.accessLogFile=/dev/stdout".into()),
            }],
            Path::new("istioctl"),
        );
        assert_eq!(findings[0].code, "plan.install-reverts");
        assert_eq!(findings[0].severity, Severity::Warning);
    }
}
