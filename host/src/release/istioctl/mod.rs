//! The release's own istioctl as a `Source` (`--istioctl PATH`): `istioctl manifest
//! generate` renders the user's IstioOperator (profile, `-f` files, `--set`, and `--manifests
//! DIR` when given) offline, exactly as `istioctl install` renders before it applies; meshup
//! does everything after rendering itself.
//!
//! What `install` adds to the manifest is added here too, so that what meshup applies is what
//! `istioctl install` would leave and istioctl recognises it as its own:
//! - each object goes to istioctl's component (`Base`, `Pilot`, `IngressGateways`, ...) and
//!   carries istioctl's ownership labels (`getOwnerLabels` in operator/pkg/install);
//! - the default revision tag (`install`'s out-of-band webhooks, `webhook.WebhooksToDeploy`):
//!   MutatingWebhookConfiguration `istio-revision-tag-default`, its Service
//!   `istiod-revision-tag-default` and the default validator `istiod-default-validator`,
//!   labelled `owning-resource-not-pruned`; `manifest generate` leaves them out, so they
//!   are rendered by a second `manifest generate` with the default revision tag on, and
//!   the `istio-sidecar-injector` webhooks are deactivated as `install` deactivates them.

mod binary;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::base::object::{Object, Rendered};
use crate::base::values as tree;
use crate::release::components;
use crate::release::iop;
use crate::release::source::{
    ClusterSpecific, Component, Facts, Inputs, Kind, KubeRange, RenderContext, Source, UserSet,
    Values,
};
pub use binary::{Binary, Error as BinaryError};

/// istioctl's components in the order `install` brings them up (its
/// `componentDependencies`: Base, then Pilot and Cni, then the gateways and Ztunnel).
const COMPONENTS: [&str; 6] = [
    "Base",
    "Pilot",
    "Cni",
    "Ztunnel",
    "IngressGateways",
    "EgressGateways",
];

/// The label istioctl puts on every object it applies, naming its component.
pub const COMPONENT_LABEL: &str = "operator.istio.io/component";
/// The label istioctl puts on what no later install may prune (the revision tag's objects).
pub const NOT_PRUNED_LABEL: &str = "install.operator.istio.io/owning-resource-not-pruned";

/// The profiles istioctl ships (manifests/profiles, 1.24 to 1.31), when no `--manifests`
/// directory says which there are.
const PROFILES: [&str; 10] = [
    "default",
    "demo",
    "minimal",
    "empty",
    "ambient",
    "remote",
    "preview",
    "stable",
    "openshift",
    "openshift-ambient",
];

/// A release istioctl cannot be the target of (the user's input: exit 2, nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Binary(#[from] binary::Error),
    #[error(
        "--manifests {}: no such directory; pass a release's manifests directory (istio-X/manifests)",
        .0.display()
    )]
    Manifests(PathBuf),
    #[error("istioctl's manifest does not parse ({0}); is --istioctl an istioctl binary?")]
    Output(String),
    #[error(
        "{object}: cannot tell which istioctl component renders it (no {COMPONENT_LABEL} label, helm.sh/chart `{chart}`); this istioctl's charts are not Istio's"
    )]
    Unassigned { object: String, chart: String },
    #[error(
        "these inputs render no istiod Deployment, so the release's version cannot be read from it; meshup upgrades a control plane: keep components.pilot enabled"
    )]
    NoControlPlane,
    #[error(
        "istiod's image `{image}` names no release version; set `tag` to the release's (e.g. --set tag=1.30.3)"
    )]
    Version { image: String },
}

/// A release rendered by its istioctl.
#[derive(Debug)]
pub struct Istioctl {
    binary: Binary,
    manifests: Option<PathBuf>,
    facts: Facts,
    /// Profile names, each with no defaults of meshup's: istioctl expands its profiles
    /// itself, and meshup never sees the expansion.
    profiles: BTreeMap<String, Value>,
}

impl Istioctl {
    /// The istioctl at `path` (with the release's `manifests` when given), its release read
    /// from what it renders for the run's `inputs`: istiod's image tag.
    pub fn load(path: &Path, manifests: Option<&Path>, inputs: &Inputs) -> anyhow::Result<Self> {
        if let Some(dir) = manifests.filter(|d| !d.is_dir()) {
            return Err(Error::Manifests(dir.to_path_buf()).into());
        }
        let binary = Binary::find(path)?;
        let profiles = profile_names(manifests)
            .into_iter()
            .map(|p| (p, json!({})))
            .collect();
        let mut source = Istioctl {
            binary,
            manifests: manifests.map(Path::to_path_buf),
            facts: placeholder_facts(),
            profiles,
        };
        // The version is istiod's image in what these inputs render (their `tag`, else the
        // release's own); the revision tag `install` adds does not change it.
        let values = source.values(inputs, "default", json!({}))?;
        let main = source
            .binary
            .generate(&iop_yaml(&values.merged), manifests)?;
        let rendered = Rendered {
            objects: source.objects(&main)?,
        };
        source.facts = facts(&source.binary, &rendered)?;
        Ok(source)
    }

    /// The ownership labels `istioctl install` puts on what it applies (`getOwnerLabels`):
    /// for `component`, or none for the revision tag's objects.
    fn owner_labels(&self, namespace: &str, component: Option<&str>) -> Vec<(String, String)> {
        let mut labels = vec![
            ("operator.istio.io/managed".into(), "Reconcile".into()),
            (
                "operator.istio.io/version".into(),
                self.binary.version.clone(),
            ),
            (
                "install.operator.istio.io/owning-resource-namespace".into(),
                namespace.to_string(),
            ),
            (
                crate::release::shipped::newest()
                    .discovery
                    .revision_label
                    .clone(),
                crate::release::discovery::DEFAULT_REVISION.into(),
            ),
        ];
        if let Some(c) = component {
            labels.push((COMPONENT_LABEL.into(), c.to_string()));
        }
        labels
    }

    /// `manifest generate` of `spec`, and of `spec` with the default revision tag on (what
    /// `install` adds), at once.
    fn generate_both(&self, spec: &Value) -> anyhow::Result<(String, Option<String>)> {
        let manifests = self.manifests.as_deref();
        let main = iop_yaml(spec);
        let tagged = tag_webhooks_needed(spec).then(|| {
            let mut with_tag = spec.clone();
            with_tag["values"]["revisionTags"] = json!(["default"]);
            with_tag["values"]["defaultRevision"] = json!("default");
            iop_yaml(&with_tag)
        });
        std::thread::scope(|s| {
            let tags = tagged
                .as_deref()
                .map(|y| s.spawn(move || self.binary.generate(y, manifests)));
            let main = self.binary.generate(&main, manifests)?;
            let tags = match tags {
                Some(h) => Some(h.join().expect("istioctl thread")?),
                None => None,
            };
            Ok((main, tags))
        })
    }

    /// Each object of `manifest` under its component, stamped as `install` stamps it.
    fn objects(&self, manifest: &str) -> anyhow::Result<Vec<Object>> {
        let docs = documents(manifest)?;
        let namespace = control_plane(&docs)
            .and_then(|d| d["metadata"]["namespace"].as_str())
            .unwrap_or("istio-system")
            .to_string();
        let mut out = Vec::new();
        for mut value in docs {
            let component = component_of(&value)?;
            stamp(&mut value, &self.owner_labels(&namespace, Some(&component)));
            out.push(object(&component, value));
        }
        Ok(out)
    }

    /// The revision tag's objects out of the tagged render, labelled as `install` labels
    /// them; they go with Pilot, after its own objects.
    fn tag_objects(&self, tagged: &str, namespace: &str) -> anyhow::Result<Vec<Object>> {
        let mut labels = self.owner_labels(namespace, None);
        labels.push((NOT_PRUNED_LABEL.into(), "true".into()));
        let docs = documents(tagged)?;
        let find = |k: &str, n: &str| docs.iter().find(|d| kind(d) == k && name(d) == n);
        let (Some(webhook), Some(service), Some(validator)) = (
            find("MutatingWebhookConfiguration", "istio-revision-tag-default"),
            find("Service", "istiod-revision-tag-default"),
            find("ValidatingWebhookConfiguration", "istiod-default-validator"),
        ) else {
            return Err(Error::Output(
                "the render with the default revision tag on has no istio-revision-tag-default webhook, Service or istiod-default-validator".into(),
            )
            .into());
        };
        let mut out = vec![
            webhook.clone(),
            tag_service(service.clone()),
            default_validator(validator.clone(), webhook),
        ];
        for value in &mut out {
            stamp(value, &labels);
        }
        Ok(out.into_iter().map(|v| object("Pilot", v)).collect())
    }
}

/// The tag's Service as `install` renders it (`generateTagService`, for revision `default`):
/// it selects istiod by revision, where the in-place render selects `istio: pilot`.
fn tag_service(mut service: Value) -> Value {
    let revision = crate::release::shipped::newest()
        .discovery
        .revision_label
        .clone();
    if let Some(selector) = service["spec"]["selector"].as_object_mut() {
        selector.remove("istio");
        selector.insert(revision, json!(crate::release::discovery::DEFAULT_REVISION));
    }
    service
}

/// The default validator as `install` renders it, from the `default` chart
/// (charts/default/templates/validatingwebhook.yaml), which `manifest generate` never
/// renders: the base chart's validator with the tag's labels (the `default` chart's
/// `istio.labels`, its `istio.io/tag` and Pilot component) and an object selector that
/// leaves revisioned objects to their revision's validator.
fn default_validator(mut validator: Value, tag_webhook: &Value) -> Value {
    let mut labels = tag_webhook["metadata"]["labels"].clone();
    labels["app"] = json!("istiod");
    labels["istio"] = json!("istiod");
    validator["metadata"]["labels"] = labels;
    let revision = &crate::release::shipped::newest().discovery.revision_label;
    if let Some(webhooks) = validator["webhooks"].as_array_mut() {
        for w in webhooks {
            w["objectSelector"] =
                json!({"matchExpressions": [{"key": revision, "operator": "DoesNotExist"}]});
        }
    }
    validator
}

/// The IstioOperator istioctl is given: the merged spec.
fn iop_yaml(spec: &Value) -> String {
    let doc = json!({"apiVersion": iop::API_VERSION, "kind": iop::KIND, "spec": spec});
    serde_yaml::to_string(&doc).unwrap_or_default()
}

/// `install` renders the default revision tag unless the operator manages webhooks
/// (`detectIfTagWebhookIsNeeded`, for the in-place revision meshup upgrades).
fn tag_webhooks_needed(spec: &Value) -> bool {
    spec["values"]["global"]["operatorManageWebhooks"] != json!(true)
}

fn profile_names(manifests: Option<&Path>) -> Vec<String> {
    let listed: Vec<String> = manifests
        .and_then(|d| std::fs::read_dir(d.join("profiles")).ok())
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".yaml").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        PROFILES.iter().map(|p| p.to_string()).collect()
    } else {
        listed
    }
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or_default()
}

fn name(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn object(component: &str, value: Value) -> Object {
    Object {
        component: component.to_string(),
        source: format!("{component}/{}-{}.yaml", kind(&value), name(&value)),
        value,
    }
}

fn stamp(value: &mut Value, labels: &[(String, String)]) {
    if !value["metadata"]["labels"].is_object() {
        value["metadata"]["labels"] = json!({});
    }
    for (k, v) in labels {
        value["metadata"]["labels"][k] = json!(v);
    }
}

/// The documents of istioctl's output (one stream, each followed by `---`).
fn documents(manifest: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(manifest) {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| Error::Output(e.to_string()))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// istiod's Deployment, by the release's discovery selector.
fn control_plane(docs: &[Value]) -> Option<&Value> {
    let selector = &crate::release::shipped::newest()
        .discovery
        .control_plane
        .selector;
    let selector = meshup_vocab::Selector::parse(selector).ok()?;
    docs.iter()
        .find(|d| kind(d) == "Deployment" && selector.matches_object(d))
}

/// The component istioctl renders an object in: its own component label where the chart
/// puts one, else the chart it comes from (every template of Istio's charts carries
/// `helm.sh/chart`), else, for the label-less ValidatingAdmissionPolicyBindings of the
/// `stable` profile, their name.
fn component_of(value: &Value) -> Result<String, Error> {
    let labels = &value["metadata"]["labels"];
    if let Some(c) = labels[COMPONENT_LABEL].as_str() {
        return Ok(c.to_string());
    }
    let chart = labels["helm.sh/chart"].as_str().unwrap_or_default();
    let by_chart = [
        ("base-", "Base"),
        ("istiod-", "Pilot"),
        ("istio-ingress-", "IngressGateways"),
        ("istio-egress-", "EgressGateways"),
        ("cni-", "Cni"),
        ("istio-cni-", "Cni"),
        ("ztunnel-", "Ztunnel"),
    ];
    if let Some((_, c)) = by_chart.iter().find(|(p, _)| chart.starts_with(p)) {
        return Ok(c.to_string());
    }
    match name(value) {
        "stable-channel-default-policy-binding.istio.io" => Ok("Base".into()),
        n if n.starts_with("stable-channel-policy-binding") => Ok("Pilot".into()),
        _ => Err(Error::Unassigned {
            object: format!("{} {}", kind(value), name(value)),
            chart: chart.to_string(),
        }),
    }
}

/// The release an image tag names, as istioctl reads its own version: a release-branch
/// build (`1.31-dev`) is the `.0` of its minor.
pub fn release_version(image: &str) -> Option<semver::Version> {
    let v = meshup_vocab::Version::parse(meshup_vocab::version::image_tag(image)?)?;
    let pre = match v.pre.as_deref() {
        None | Some("dev") => semver::Prerelease::EMPTY,
        Some(p) => semver::Prerelease::new(p).ok()?,
    };
    Some(semver::Version {
        major: v.major,
        minor: v.minor,
        patch: v.patch,
        pre,
        build: semver::BuildMetadata::EMPTY,
    })
}

/// Facts until the first render says which release this is.
fn placeholder_facts() -> Facts {
    let shipped = crate::release::shipped::newest();
    Facts {
        product: shipped.name.clone(),
        version: semver::Version::new(0, 0, 0),
        namespace: "istio-system".into(),
        kubernetes: KubeRange {
            min: String::new(),
            max: String::new(),
        },
        components: vec![],
        discovery: shipped.discovery.clone(),
        digest: String::new(),
    }
}

/// The release's facts from what it renders: its version from istiod's image, its
/// components in istioctl's order with roles read from their objects, and its namespace.
fn facts(binary: &Binary, rendered: &Rendered) -> Result<Facts, Error> {
    let mut facts = placeholder_facts();
    let values: Vec<Value> = rendered.objects.iter().map(|o| o.value.clone()).collect();
    let istiod = control_plane(&values).ok_or(Error::NoControlPlane)?;
    let container = &facts.discovery.control_plane.container;
    let image = istiod["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == container.as_str()))
        .and_then(|c| c["image"].as_str())
        .unwrap_or_default();
    facts.version = release_version(image).ok_or_else(|| Error::Version {
        image: image.to_string(),
    })?;
    facts.namespace = istiod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("istio-system")
        .to_string();
    facts.kubernetes =
        crate::release::charts::support::kubernetes(&facts.version).unwrap_or(facts.kubernetes);
    facts.components = COMPONENTS
        .iter()
        .filter(|c| rendered.component(c).next().is_some())
        .map(|c| Component {
            name: c.to_string(),
            role: components::role(rendered, c, &facts.discovery),
            enabled: None,
            // Read from what it renders (`release::components`).
            readiness: vec![],
            labels: BTreeMap::from([(COMPONENT_LABEL.to_string(), c.to_string())]),
        })
        .collect();
    // What the release is made of: this istioctl (its version) and what it renders.
    let mut hasher = Sha256::new();
    hasher.update(binary.version.as_bytes());
    hasher.update(rendered.manifest().as_bytes());
    facts.digest = hex::encode(hasher.finalize());
    Ok(facts)
}

/// The user's IstioOperator: the `-f` files' specs merged in order, then each `--set`.
fn user_spec(inputs: &Inputs) -> anyhow::Result<Value> {
    // istioctl merges the gateway lists by name and replaces every other list.
    let rule = tree::MergeRule {
        by_name: vec![
            "components.ingressGateways".into(),
            "components.egressGateways".into(),
        ],
    };
    let mut spec = json!({});
    for f in &inputs.value_files {
        rule.merge(&mut spec, &iop::read_file(f)?);
    }
    for s in &inputs.set {
        iop::set_unchecked(&mut spec, s)?;
    }
    Ok(spec)
}

impl Source for Istioctl {
    fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Its values are IstioOperator specs, as a bundle's are.
    fn kind(&self) -> Kind {
        Kind::Bundle
    }

    fn profile(&self, name: &str) -> Option<&Value> {
        self.profiles.get(name)
    }

    fn default_profile(&self) -> &str {
        "default"
    }

    /// The user's IstioOperator as istioctl will read it; istioctl itself checks it when it
    /// renders (an unknown field or a wrong type is its refusal, exit 2).
    fn values(&self, inputs: &Inputs, profile: &str, cluster: Value) -> anyhow::Result<Values> {
        let mut overlay = user_spec(inputs)?;
        let named = overlay
            .as_object_mut()
            .and_then(|m| m.remove("profile"))
            .and_then(|p| p.as_str().map(str::to_string));
        let chosen = inputs.profile.clone().or(named);
        self.layer(chosen.as_deref().unwrap_or(profile), cluster, overlay)
    }

    fn layer(&self, profile: &str, cluster: Value, overlay: Value) -> anyhow::Result<Values> {
        let mut spec = overlay.clone();
        spec["profile"] = json!(profile);
        Ok(Values {
            profile: profile.to_string(),
            defaults: json!({}),
            cluster,
            overlay,
            merged: spec.clone(),
            spec,
        })
    }

    fn effective_defaults(&self, profile: &Value) -> Value {
        profile.clone()
    }

    /// `manifest generate` chooses nothing from the cluster (no `--cluster-specific`).
    fn cluster_specific(&self) -> &[ClusterSpecific] {
        &[]
    }

    /// A spec recorded for this source is the user's IstioOperator, all of it theirs.
    fn user_set(&self, _profile: &str, spec: &Value, _running: Option<&str>) -> UserSet {
        let mut overlay = spec.clone();
        if let Some(m) = overlay.as_object_mut() {
            m.remove("profile");
        }
        UserSet {
            overlay,
            cluster: json!({}),
        }
    }

    /// istioctl's manifest for the spec, plus the revision tag `install` adds; the same
    /// for any cluster (istioctl renders offline).
    fn render(&self, merged: &Value, _ctx: RenderContext<'_>) -> anyhow::Result<Rendered> {
        let (main, tagged) = self.generate_both(merged)?;
        let mut objects = self.objects(&main)?;
        if let Some(tagged) = tagged {
            let namespace = objects
                .iter()
                .find_map(|o| o.namespace().map(str::to_string))
                .unwrap_or_else(|| "istio-system".into());
            let tags = self.tag_objects(&tagged, &namespace)?;
            deactivate_default_injector(&mut objects);
            objects.extend(tags);
        }
        // In istioctl's component order, each component's objects as istioctl sorts them.
        objects.sort_by_key(|o| COMPONENTS.iter().position(|c| *c == o.component));
        Ok(Rendered { objects })
    }

    /// No istioctl of another release is at hand.
    fn release_of(&self, _version: &str) -> Option<Box<dyn Source>> {
        None
    }
}

/// With the default revision tag in place, `install` turns the default injector's webhooks
/// off (`DeactivateIstioInjectionWebhook`: selectors that never match), so that pods are
/// injected once, through the tag.
fn deactivate_default_injector(objects: &mut [Object]) {
    let never = json!({"matchLabels": {"istio.io/deactivated": "never-match"}});
    let injector = objects.iter_mut().find(|o| {
        o.kind() == "MutatingWebhookConfiguration" && o.name() == "istio-sidecar-injector"
    });
    let Some(webhooks) = injector.and_then(|o| o.value["webhooks"].as_array_mut()) else {
        return;
    };
    for w in webhooks {
        w["namespaceSelector"] = never.clone();
        w["objectSelector"] = never.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_branch_build_is_the_first_patch_of_its_minor() {
        let v = |s: &str| release_version(s).map(|v| v.to_string());
        assert_eq!(
            v("docker.io/istio/pilot:1.31-dev").as_deref(),
            Some("1.31.0")
        );
        assert_eq!(v("docker.io/istio/pilot:1.30.3").as_deref(), Some("1.30.3"));
        assert_eq!(
            v("gcr.io/istio-release/pilot:1.31.0-rc.0-distroless").as_deref(),
            Some("1.31.0-rc.0")
        );
        assert_eq!(v("registry.istio.io/testing/pilot:latest"), None);
    }

    #[test]
    fn objects_go_to_istioctls_components() {
        let obj = |labels: Value, name: &str| json!({"kind": "X", "metadata": {"name": name, "labels": labels}});
        let c = |v: Value| component_of(&v).ok();
        assert_eq!(
            c(obj(
                json!({COMPONENT_LABEL: "IngressGateways", "helm.sh/chart": "istiod-1.0.0"}),
                "a"
            ))
            .as_deref(),
            Some("IngressGateways")
        );
        assert_eq!(
            c(obj(json!({"helm.sh/chart": "base-1.30.3"}), "a")).as_deref(),
            Some("Base")
        );
        assert_eq!(
            c(obj(json!({"helm.sh/chart": "istiod-1.30.3"}), "a")).as_deref(),
            Some("Pilot")
        );
        assert_eq!(
            c(obj(json!({}), "stable-channel-policy-binding-istio-system")).as_deref(),
            Some("Pilot")
        );
        assert!(c(obj(json!({"helm.sh/chart": "other-1.0.0"}), "a")).is_none());
    }

    #[test]
    fn an_index_into_a_list_is_refused_and_a_named_item_is_set() {
        let inputs = |set: &str| Inputs {
            set: vec![set.into()],
            ..Default::default()
        };
        assert!(user_spec(&inputs("components.ingressGateways[0].enabled=false")).is_err());
        let spec = user_spec(&inputs(
            "components.ingressGateways[name:istio-ingressgateway].enabled=false",
        ))
        .unwrap();
        assert_eq!(
            spec,
            json!({"components": {"ingressGateways": [{"name": "istio-ingressgateway", "enabled": false}]}})
        );
    }
}
