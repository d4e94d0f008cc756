//! Release bundles: a directory with `bundle.yaml`, `profiles/*.yaml` and
//! `templates/<component>/*.yaml`.
//!
//! Loading validates the files up front (manifest fields, profiles, templates present), so
//! a mistake is reported with its file and line before anything talks to a cluster; that
//! every profile renders is checked by `render::lint`, which builds on this module.

pub mod render;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::base::values;
use crate::base::yaml;

pub const MANIFEST_FILE: &str = "bundle.yaml";
pub const DEFAULT_PROFILE: &str = "default";
pub const CHARTS_FILE: &str = "charts.yaml";

/// A bundle that cannot be used: always the user's input (exit 2), always naming the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "bundle {}: no {MANIFEST_FILE} found; pass --bundle a directory such as bundles/istio-1.8.6",
        .0.display()
    )]
    NotABundle(PathBuf),
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Yaml(#[from] yaml::Error),
    /// A file parses but says something a bundle may not.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("bundle {bundle}: no profile `{name}`; available: {}", known.join(", "))]
    NoProfile {
        bundle: String,
        name: String,
        known: Vec<String>,
    },
    /// A template that does not render with one of the bundle's own profiles.
    #[error("bundle {} (profile `{profile}`): {message}", dir.display())]
    Render {
        dir: PathBuf,
        profile: String,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// `bundle.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    /// Product name, e.g. `istio`.
    pub name: String,
    /// Release version, e.g. `1.8.6`.
    pub version: semver::Version,
    #[serde(default)]
    pub description: String,
    /// The Kubernetes versions this release supports (inclusive, `major.minor`).
    pub kubernetes: KubeRange,
    /// The control-plane namespace.
    pub namespace: String,
    /// How the release's installed control plane and data plane are found.
    pub discovery: crate::release::discovery::Discovery,
    /// Components in apply order.
    pub components: Vec<Component>,
    /// Labels every object carries (values are templates: istioctl's owner labels, so that
    /// what meshup applies is found, pruned and taken over the way istioctl's is).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// istioctl's legacy spellings of spec paths in this release (`values.global.hub` →
    /// `hub`): inputs and istioctl's installed-state are normalised through them.
    #[serde(default)]
    pub aliases: Vec<crate::release::iop::Alias>,
    /// Values the installer chooses from the cluster it installs to (istioctl's
    /// cluster-specific settings): never the user's, and derived the same way for a target.
    #[serde(default)]
    pub cluster_specific: Vec<ClusterSpecific>,
    /// How the release's installer merges IstioOperator trees (profiles, files, inputs).
    #[serde(default)]
    pub merge: values::MergeRule,
}

pub use crate::release::source::{
    ClusterSpecific, Component, KubeRange, ReadinessRef, Role, Served,
};

/// One template file of a component.
#[derive(Debug, Clone)]
pub struct Template {
    /// `component/file.yaml`, the name used in errors and `# Source:` lines.
    pub name: String,
    pub source: String,
}

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Each profile's full values tree (named profiles are merged over `default`), exactly
    /// as the release's installer expands it: what a user did not set.
    pub profiles: BTreeMap<String, Value>,
    /// `charts.yaml`: the charts' own defaults for what templates read and no profile sets
    /// (under every profile when rendering; never taken for a profile's or a user's value).
    pub charts: Value,
    /// What inputs are checked against: the charts' defaults under the default profile.
    pub schema: Value,
    /// Templates per component name, in file-name order.
    pub templates: BTreeMap<String, Vec<Template>>,
    /// sha256 over every file of the bundle (paths and contents), hex.
    pub digest: String,
    /// What the engine knows of the release (`Source::facts`).
    pub facts: crate::release::source::Facts,
}

impl Bundle {
    /// Load and validate a bundle directory's files; errors name the file and line.
    /// (`render::lint` then checks that every profile renders.)
    pub fn load(dir: &Path) -> Result<Bundle> {
        let manifest_path = dir.join(MANIFEST_FILE);
        if !manifest_path.is_file() {
            return Err(Error::NotABundle(dir.to_path_buf()));
        }
        let mut hasher = Sha256::new();
        let manifest_src = read(&manifest_path, &mut hasher, MANIFEST_FILE)?;
        let manifest: Manifest = yaml::parse(&manifest_path, &manifest_src)?;
        validate_manifest(&manifest_path, &manifest)?;
        let charts = load_charts(dir, &mut hasher)?;
        let profiles = load_profiles(dir, &manifest.merge, &mut hasher)?;
        let templates = load_templates(dir, &manifest, &mut hasher)?;
        let schema = with_charts(&charts, &profiles[DEFAULT_PROFILE]);
        let digest = hex::encode(hasher.finalize());
        let facts = crate::release::source::Facts {
            product: manifest.name.clone(),
            version: manifest.version.clone(),
            namespace: manifest.namespace.clone(),
            kubernetes: manifest.kubernetes.clone(),
            components: manifest.components.clone(),
            discovery: manifest.discovery.clone(),
            digest: digest.clone(),
        };
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
            profiles,
            charts,
            schema,
            templates,
            digest,
            facts,
        })
    }

    pub fn version(&self) -> &semver::Version {
        &self.manifest.version
    }

    pub fn namespace(&self) -> &str {
        &self.manifest.namespace
    }

    /// `istio-1.8.6`
    pub fn id(&self) -> String {
        format!("{}-{}", self.manifest.name, self.manifest.version)
    }

    pub fn profile(&self, name: &str) -> Result<&Value> {
        self.profiles.get(name).ok_or_else(|| Error::NoProfile {
            bundle: self.id(),
            name: name.into(),
            known: self.profiles.keys().cloned().collect(),
        })
    }

    /// The schema inputs are checked against: the charts' defaults under the default
    /// profile.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// What templates render from before the cluster's and the user's values: the charts'
    /// defaults with `profile` (an expanded profile) merged over them.
    pub fn with_charts(&self, profile: &Value) -> Value {
        with_charts(&self.charts, profile)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.manifest.components.iter().find(|c| c.name == name)
    }
}

fn read(path: &Path, hasher: &mut Sha256, rel: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Length-prefix the path so that moving bytes between files changes the digest.
    hasher.update((rel.len() as u64).to_le_bytes());
    hasher.update(rel.as_bytes());
    hasher.update((text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
    Ok(text)
}

fn validate_manifest(path: &Path, m: &Manifest) -> Result<()> {
    let bad = |what: String| invalid(path, what);
    if m.api_version != "meshup.dev/v1" || m.kind != "Bundle" {
        return Err(bad(format!(
            "expected `apiVersion: meshup.dev/v1` and `kind: Bundle`, found `{}` / `{}`",
            m.api_version, m.kind
        )));
    }
    for v in [&m.kubernetes.min, &m.kubernetes.max] {
        parse_minor(v)
            .ok_or_else(|| bad(format!("kubernetes range: `{v}` is not `major.minor`")))?;
    }
    if parse_minor(&m.kubernetes.min) > parse_minor(&m.kubernetes.max) {
        return Err(bad("kubernetes range: min is above max".into()));
    }
    if m.components.is_empty() {
        return Err(bad("components: at least one component is needed".into()));
    }
    for c in &m.cluster_specific {
        let conditions = [c.if_served.is_some(), c.if_kubernetes_at_least.is_some()];
        if conditions.iter().filter(|set| **set).count() != 1 {
            return Err(bad(format!(
                "clusterSpecific `{}`: give exactly one of ifServed, ifKubernetesAtLeast",
                c.path
            )));
        }
        if let Some(v) = &c.if_kubernetes_at_least {
            parse_minor(v).ok_or_else(|| {
                bad(format!(
                    "clusterSpecific `{}`: `{v}` is not `major.minor`",
                    c.path
                ))
            })?;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &m.components {
        if !seen.insert(&c.name) {
            return Err(bad(format!("components: `{}` is listed twice", c.name)));
        }
        for r in &c.readiness {
            if !matches!(r.kind.as_str(), "Deployment" | "DaemonSet") {
                return Err(bad(format!(
                    "component `{}`: readiness kind `{}` is not supported (Deployment or DaemonSet)",
                    c.name, r.kind
                )));
            }
        }
    }
    Ok(())
}

/// `"1.24"` or `"v1.24.3"` → `(1, 24)`.
pub fn parse_minor(v: &str) -> Option<(u64, u64)> {
    meshup_vocab::Version::parse(v).map(|v| (v.major, v.minor))
}

/// The charts' defaults lie under every component the way a chart's rendered objects lie
/// under istioctl's `k8s` overlays (a strategic merge on the objects, lists keyed by name).
fn with_charts(charts: &Value, profile: &Value) -> Value {
    let mut out = charts.clone();
    values::merge(&mut out, profile);
    out
}

/// `charts.yaml`, optional (a bundle whose profiles set everything has none).
fn load_charts(dir: &Path, hasher: &mut Sha256) -> Result<Value> {
    let path = dir.join(CHARTS_FILE);
    if !path.is_file() {
        return Ok(Value::Object(Default::default()));
    }
    let text = read(&path, hasher, CHARTS_FILE)?;
    match yaml::parse::<Value>(&path, &text)? {
        Value::Null => Ok(Value::Object(Default::default())),
        tree @ Value::Object(_) => Ok(tree),
        _ => Err(invalid(
            &path,
            "the charts' defaults must be a mapping of values",
        )),
    }
}

fn load_profiles(
    dir: &Path,
    rule: &values::MergeRule,
    hasher: &mut Sha256,
) -> Result<BTreeMap<String, Value>> {
    let pdir = dir.join("profiles");
    let default_path = pdir.join(format!("{DEFAULT_PROFILE}.yaml"));
    if !default_path.is_file() {
        return Err(invalid(
            &default_path,
            "missing; every bundle needs a default profile",
        ));
    }
    let mut overlays = BTreeMap::new();
    for path in sorted_yaml_files(&pdir)? {
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let text = read(&path, hasher, &format!("profiles/{name}.yaml"))?;
        let tree: Value = yaml::parse(&path, &text)?;
        let tree = if tree.is_null() {
            Value::Object(Default::default())
        } else {
            tree
        };
        if !tree.is_object() {
            return Err(invalid(&path, "a profile must be a mapping of values"));
        }
        overlays.insert(name, (path, tree));
    }
    // Named profiles are the release's own, merged over `default` as its installer merges
    // them; they may set what `default` does not (1.7's `minimal` sets an addon's `enabled`).
    let default = overlays[DEFAULT_PROFILE].1.clone();
    let mut profiles = BTreeMap::new();
    for (name, (_, tree)) in overlays {
        let mut full = default.clone();
        rule.merge(&mut full, &tree);
        profiles.insert(name, full);
    }
    Ok(profiles)
}

fn load_templates(
    dir: &Path,
    m: &Manifest,
    hasher: &mut Sha256,
) -> Result<BTreeMap<String, Vec<Template>>> {
    let mut out = BTreeMap::new();
    for c in &m.components {
        let cdir = dir.join("templates").join(&c.name);
        let files = sorted_yaml_files(&cdir)?;
        if files.is_empty() {
            return Err(invalid(
                &cdir,
                format!(
                    "component `{}` has no templates (expected *.yaml files here)",
                    c.name
                ),
            ));
        }
        let mut templates = Vec::new();
        for path in files {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            let name = format!("{}/{file}", c.name);
            let source = read(&path, hasher, &format!("templates/{name}"))?;
            templates.push(Template { name, source });
        }
        out.insert(c.name.clone(), templates);
    }
    Ok(out)
}

fn sorted_yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions_parse() {
        assert_eq!(parse_minor("1.24"), Some((1, 24)));
        assert_eq!(parse_minor("v1.30.2"), Some((1, 30)));
        assert_eq!(parse_minor("1.28+"), Some((1, 28)));
        assert_eq!(parse_minor("x"), None);
    }
}

#[cfg(test)]
mod bundle_tests {
    use super::*;
    use crate::release::bundle::render::render;
    use meshup_real_tests::fs::copy_dir;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../bundles")
            .join(name)
    }

    #[test]
    fn shipped_bundle_loads_and_renders_reproducibly() {
        let b = Bundle::load(&shipped("istio-1.7.8")).unwrap();
        assert_eq!(b.version().to_string(), "1.7.8");
        let values = &b.with_charts(b.profile("default").unwrap());
        let one = render(&b, values, "default").unwrap();
        let two = render(&b, values, "default").unwrap();
        assert_eq!(one.manifest(), two.manifest());
        let istiod = one
            .objects
            .iter()
            .find(|o| o.kind() == "Deployment" && o.name() == "istiod")
            .unwrap();
        let image = &istiod.value["spec"]["template"]["spec"]["containers"][0]["image"];
        // Autoscaling is on by default: the HPA owns the replica count, as in Istio's chart.
        assert!(istiod.value["spec"].get("replicas").is_none());
        assert_eq!(image, "docker.io/istio/pilot:1.7.8");
        assert_eq!(
            istiod.value["metadata"]["labels"][crate::base::object::MANAGED_BY],
            "meshup"
        );
        // The manifest round-trips through history's text form.
        let back = crate::base::object::Rendered::from_manifest(&one.manifest()).unwrap();
        assert_eq!(back.objects, one.objects);
    }

    #[test]
    fn every_shipped_bundle_loads() {
        for name in ["istio-1.6.14", "istio-1.7.8", "istio-1.8.6", "istio-1.9.5"] {
            let b = Bundle::load(&shipped(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            crate::release::bundle::render::lint(&b).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(b.id(), name);
            assert_eq!(b.profiles.len(), 3, "{name}: default, demo, minimal");
        }
    }

    #[test]
    fn profiles_switch_components() {
        let b = Bundle::load(&shipped("istio-1.7.8")).unwrap();
        let minimal = render(&b, &b.with_charts(b.profile("minimal").unwrap()), "default").unwrap();
        assert!(
            minimal
                .objects
                .iter()
                .all(|o| o.component != "ingress-gateway")
        );
        let demo = render(&b, &b.with_charts(b.profile("demo").unwrap()), "default").unwrap();
        assert!(
            demo.objects
                .iter()
                .any(|o| o.name() == "istio-egressgateway")
        );
        assert!(b.profile("nope").is_err());
    }

    #[test]
    fn mistakes_point_at_file_and_line() {
        let tmp = std::env::temp_dir().join(format!("meshup-bad-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        copy_dir(&shipped("istio-1.7.8"), &tmp);
        let manifest = std::fs::read_to_string(tmp.join(MANIFEST_FILE)).unwrap();
        std::fs::write(
            tmp.join(MANIFEST_FILE),
            manifest.replace("    role: gateway", "    rol: gateway"),
        )
        .unwrap();
        let err = format!("{:#}", Bundle::load(&tmp).unwrap_err());
        let line = 1 + manifest
            .lines()
            .position(|l| l == "    role: gateway")
            .unwrap();
        assert!(
            err.contains(&format!("bundle.yaml:{line}")) && err.contains("unknown field `rol`"),
            "{err}"
        );

        std::fs::write(tmp.join(MANIFEST_FILE), manifest).unwrap();
        let t = tmp.join("templates/istiod/service.yaml");
        let src = std::fs::read_to_string(&t).unwrap();
        std::fs::write(
            &t,
            src.replacen("{{ namespace }}", "{{ values.pilot.nosuch }}", 1),
        )
        .unwrap();
        // It loads (the files are well-formed) and linting finds the template mistake.
        let b = Bundle::load(&tmp).unwrap();
        let err = crate::release::bundle::render::lint(&b).unwrap_err();
        assert!(matches!(err, Error::Render { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("templates/istiod/service.yaml:5"), "{err}");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
