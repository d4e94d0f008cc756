//! A release's own Helm charts as a `Source` (`--charts PATH`): Istio's `base`, `istiod`
//! and `gateway` charts as the release archive ships them (`istio-X/manifests/charts`) or as
//! `helm pull` leaves them (chart directories or `.tgz` files), rendered by Helm's own
//! engine. One component per chart release, with Istio's documented names: `istio-base`
//! (chart `base`) and `istiod` (chart `istiod`) in `istio-system`, and one `gateway`
//! release per gateway (`--gateway [NAMESPACE/]RELEASE`; by default `istio-ingress` in
//! `istio-ingress`, as istio.io installs it).
//!
//! Inputs are Helm values per release: `-f RELEASE=FILE` and `--set RELEASE:path=value`
//! (`--set istiod:pilot.autoscaleMin=2`), checked against the chart (`values`).

pub mod chart;
pub mod helm;
pub mod support;
mod values;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::base::object::{Object, Rendered};
use crate::base::values as tree;
use crate::release::source::{
    BehaviourChange, ClusterSpecific, Component, Facts, Inputs, Kind, KubeRange, Placement,
    RenderContext, Role, Source, UserSet, Values,
};
use chart::Chart;
use helm::Helm;

/// The namespace of the control plane, as Istio's Helm procedure installs it.
const NAMESPACE: &str = "istio-system";

/// The control plane's chart releases, in apply order: (release, chart, namespace, role).
/// The gateways (chart `gateway`) come after them.
const RELEASES: [(&str, &str, &str, Role); 2] = [
    ("istio-base", "base", NAMESPACE, Role::Base),
    ("istiod", "istiod", NAMESPACE, Role::ControlPlane),
];

/// The chart every gateway release is of.
const GATEWAY_CHART: &str = "gateway";

/// One release of the `gateway` chart: `--gateway [NAMESPACE/]RELEASE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub name: String,
    pub namespace: String,
}

impl Gateway {
    /// The gateway istio.io installs: release `istio-ingress` in namespace `istio-ingress`.
    pub fn default_ingress() -> Gateway {
        Gateway {
            name: "istio-ingress".into(),
            namespace: "istio-ingress".into(),
        }
    }
}

impl std::str::FromStr for Gateway {
    type Err = String;

    /// `RELEASE` (in a namespace of the same name, as istio.io installs its gateway) or
    /// `NAMESPACE/RELEASE`; both DNS labels, the release name at most 53 characters (Helm's
    /// limit).
    fn from_str(s: &str) -> Result<Gateway, String> {
        let (namespace, name) = s.split_once('/').unwrap_or((s, s));
        let label = |v: &str, max: usize| {
            !v.is_empty()
                && v.len() <= max
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !v.starts_with('-')
                && !v.ends_with('-')
        };
        if !label(name, 53) || !label(namespace, 63) {
            return Err(format!(
                "`{s}`: give RELEASE or NAMESPACE/RELEASE, each lowercase letters, digits and '-' (a release name at most 53 characters), e.g. istio-ingress or edge/edge-gateway"
            ));
        }
        Ok(Gateway {
            name: name.into(),
            namespace: namespace.into(),
        })
    }
}

/// Charts that cannot be the target (the user's input: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{}: no Istio charts found (looked for base, istiod and gateway in the directory, its manifests/charts, and chart directories or .tgz files in it); pass a release directory such as istio-1.30.3, its manifests/charts, or a folder of `helm pull` charts",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("{}: chart `{chart}` is missing (found: {})", path.display(), found.join(", "))]
    Missing {
        path: PathBuf,
        chart: String,
        found: Vec<String>,
    },
    #[error(
        "{}: chart `{chart}` says appVersion {found}: not a released Istio version (a source checkout says 1.0.0); use the charts of a release archive or `helm pull istio/{chart} --version X`",
        path.display()
    )]
    Unstamped {
        path: PathBuf,
        chart: String,
        found: String,
    },
    #[error(
        "{}: the charts are of different releases ({}); use the charts of one release",
        path.display(),
        found.join(", ")
    )]
    Mixed { path: PathBuf, found: Vec<String> },
    #[error(transparent)]
    Chart(#[from] chart::Error),
    #[error(transparent)]
    Helm(#[from] helm::Error),
    #[error(transparent)]
    Values(#[from] values::Error),
    #[error(
        "--gateway {name}: the release name is taken ({taken}); give each gateway its own release name"
    )]
    GatewayName { name: String, taken: String },
}

/// One chart release of the install.
#[derive(Debug, Clone)]
struct Release {
    name: String,
    chart: Chart,
    namespace: String,
    role: Role,
}

/// A release's charts, ready to render.
#[derive(Debug)]
pub struct Charts {
    dir: PathBuf,
    helm: Helm,
    gateways: Vec<Gateway>,
    releases: Vec<Release>,
    facts: Facts,
    /// Each release's chart defaults (`values.yaml`, Istio's internal defaults lifted).
    defaults: Value,
}

impl Charts {
    /// The charts at `path` (a release directory, its `manifests/charts`, or a folder of
    /// chart directories or `.tgz` files), rendered by `helm`, with a `gateway` chart release
    /// for each of `gateways` (none given: Istio's documented `istio-ingress`).
    pub fn load(path: &Path, helm: Option<&Path>, gateways: &[Gateway]) -> Result<Charts, Error> {
        let found = find_charts(path)?;
        let version = release_version(path, &found)?;
        let helm = Helm::find(helm)?;
        let gateways = match gateways {
            [] => vec![Gateway::default_ingress()],
            g => g.to_vec(),
        };
        let chart_of = |chart: &str| {
            found.get(chart).cloned().ok_or_else(|| Error::Missing {
                path: path.to_path_buf(),
                chart: chart.to_string(),
                found: found.keys().cloned().collect(),
            })
        };
        let mut releases = Vec::new();
        for (name, chart, namespace, role) in RELEASES {
            releases.push(Release {
                name: name.into(),
                chart: chart_of(chart)?,
                namespace: namespace.into(),
                role,
            });
        }
        for g in &gateways {
            if let Some(taken) = releases.iter().find(|r| r.name == g.name) {
                return Err(Error::GatewayName {
                    name: g.name.clone(),
                    taken: format!("release {} in {}", taken.name, taken.namespace),
                });
            }
            releases.push(Release {
                name: g.name.clone(),
                chart: chart_of(GATEWAY_CHART)?,
                namespace: g.namespace.clone(),
                role: Role::Gateway,
            });
        }
        let defaults = releases
            .iter()
            .map(|r| (r.name.clone(), values::defaults(&r.chart)))
            .collect::<serde_json::Map<_, _>>();
        let facts = facts(&version, &releases);
        Ok(Charts {
            dir: path.to_path_buf(),
            helm,
            gateways,
            releases,
            facts,
            defaults: Value::Object(defaults),
        })
    }
}

/// The charts under `path`, by chart name; the first layout that has any wins.
fn find_charts(path: &Path) -> Result<BTreeMap<String, Chart>, Error> {
    let candidates = [
        path.join("manifests/charts"),
        path.to_path_buf(),
        path.join("charts"),
    ];
    for dir in candidates.iter().filter(|d| d.is_dir()) {
        let mut found = BTreeMap::new();
        for p in chart_paths(dir) {
            let chart = Chart::read(&p)?;
            found.entry(chart.metadata.name.clone()).or_insert(chart);
        }
        if found.contains_key("istiod") || found.contains_key("base") {
            return Ok(found);
        }
    }
    Err(Error::NotFound {
        path: path.to_path_buf(),
    })
}

/// Chart directories (`Chart.yaml` at most two levels down, as `istio-control/
/// istio-discovery` is) and `.tgz` files, sorted.
fn chart_paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for p in entries(dir) {
        if p.is_dir() && p.join("Chart.yaml").is_file() {
            out.push(p);
        } else if p.is_dir() {
            out.extend(
                entries(&p)
                    .into_iter()
                    .filter(|q| q.is_dir() && q.join("Chart.yaml").is_file()),
            );
        } else if p.extension().is_some_and(|e| e == "tgz") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The release all three charts are of: their `appVersion`, stamped as Istio's release
/// tooling stamps it, and the same for each.
fn release_version(path: &Path, found: &BTreeMap<String, Chart>) -> Result<semver::Version, Error> {
    let mut versions: Vec<(&str, semver::Version)> = Vec::new();
    for chart in ["base", "istiod", GATEWAY_CHART] {
        let Some(c) = found.get(chart) else { continue };
        let app = c.metadata.app_version.clone().unwrap_or_default();
        let parsed = semver::Version::parse(&app)
            .ok()
            .filter(|v| v.major == 1 && v.minor > 0);
        let Some(v) = parsed else {
            return Err(Error::Unstamped {
                path: path.to_path_buf(),
                chart: chart.into(),
                found: if app.is_empty() { "(none)".into() } else { app },
            });
        };
        versions.push((chart, v));
    }
    let first = versions.first().map(|(_, v)| v.clone());
    if versions.iter().any(|(_, v)| Some(v) != first.as_ref()) {
        return Err(Error::Mixed {
            path: path.to_path_buf(),
            found: versions.iter().map(|(c, v)| format!("{c} {v}")).collect(),
        });
    }
    first.ok_or_else(|| Error::NotFound {
        path: path.to_path_buf(),
    })
}

fn facts(version: &semver::Version, releases: &[Release]) -> Facts {
    let shipped = crate::release::shipped::newest();
    let components = releases
        .iter()
        .map(|r| Component {
            name: r.name.clone(),
            role: r.role,
            enabled: None,
            // Read from what the chart renders (`release::components`).
            readiness: vec![],
            labels: Default::default(),
        })
        .collect();
    // What the charts are: each one's name, version and values (what Helm renders from
    // besides its templates, which the version stands for).
    let mut hasher = Sha256::new();
    for r in releases {
        let m = &r.chart.metadata;
        hasher.update(format!("{}\0{}\0{}\0", m.name, m.version, r.chart.values).as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    Facts {
        product: shipped.name.clone(),
        version: version.clone(),
        namespace: NAMESPACE.into(),
        kubernetes: support::kubernetes(version).unwrap_or(KubeRange {
            min: String::new(),
            max: String::new(),
        }),
        components,
        discovery: shipped.discovery.clone(),
        digest,
    }
}

impl Source for Charts {
    fn facts(&self) -> &Facts {
        &self.facts
    }

    fn kind(&self) -> Kind {
        Kind::Charts
    }

    /// A component is a chart release: installed under its name, from its chart, into its
    /// namespace (`istio-ingress` for the gateway).
    fn placement(&self, component: &Component) -> Placement {
        let release = self.releases.iter().find(|r| r.name == component.name);
        Placement {
            release: component.name.clone(),
            chart: release.map(|r| r.chart.metadata.name.clone()),
            namespace: release.map_or_else(|| NAMESPACE.to_string(), |r| r.namespace.clone()),
        }
    }

    /// The Helm values the user gave for the release (`merged` holds them by release name).
    fn component_values(&self, component: &Component, merged: &Value) -> Value {
        merged
            .get(&component.name)
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// Helm values have no profiles of meshup's: `default` is the charts' own defaults
    /// (Istio's `profile` value is one more value to set per release).
    fn profile(&self, name: &str) -> Option<&Value> {
        (name == "default").then_some(&self.defaults)
    }

    fn default_profile(&self) -> &str {
        "default"
    }

    fn values(&self, inputs: &Inputs, _profile: &str, cluster: Value) -> anyhow::Result<Values> {
        let names: Vec<&str> = self.releases.iter().map(|r| r.name.as_str()).collect();
        let charts: BTreeMap<&str, &Chart> = self
            .releases
            .iter()
            .map(|r| (r.name.as_str(), &r.chart))
            .collect();
        let overlay = values::user_values(&names, &charts, inputs).map_err(Error::Values)?;
        self.layer("default", cluster, overlay)
    }

    /// What templates render from is the user's values alone: Helm lays them over the
    /// chart's defaults (and Istio's profiles) itself, and values given again at their
    /// default would override a profile's.
    fn layer(&self, _profile: &str, cluster: Value, overlay: Value) -> anyhow::Result<Values> {
        let merged = overlay.clone();
        Ok(Values {
            profile: "default".into(),
            defaults: self.defaults.clone(),
            cluster,
            spec: overlay.clone(),
            overlay,
            merged,
        })
    }

    /// The charts' defaults, less the release's own image (`global.hub`, `global.tag`): a
    /// new release's image is the upgrade itself, not a changed default.
    fn effective_defaults(&self, profile: &Value) -> Value {
        let mut out = profile.clone();
        for r in &self.releases {
            let global = out.get_mut(&r.name).and_then(|v| v.get_mut("global"));
            if let Some(global) = global.and_then(Value::as_object_mut) {
                global.remove("hub");
                global.remove("tag");
            }
        }
        out
    }

    fn cluster_specific(&self) -> &[ClusterSpecific] {
        &[]
    }

    /// A recorded spec is Helm values per release: all of it the user's.
    fn user_set(&self, _profile: &str, spec: &Value, _running: Option<&str>) -> UserSet {
        UserSet {
            overlay: spec.clone(),
            cluster: Value::Object(Default::default()),
        }
    }

    /// `helm template` of each release with its user values (`merged` holds them under
    /// the release's name), in apply order.
    fn render(&self, merged: &Value, ctx: RenderContext<'_>) -> anyhow::Result<Rendered> {
        let none = Value::Object(Default::default());
        // The releases at once (separate helm processes), their objects in apply order.
        let outputs: Vec<Result<String, helm::Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .releases
                .iter()
                .map(|r| {
                    let user = merged.get(&r.name).unwrap_or(&none);
                    s.spawn(move || {
                        self.helm.template(
                            &r.name,
                            &r.chart.path,
                            &r.namespace,
                            user,
                            ctx.kubernetes,
                            ctx.upgrade,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("helm thread"))
                .collect()
        });
        let mut objects = Vec::new();
        for (r, out) in self.releases.iter().zip(outputs) {
            objects.extend(documents(&r.name, &r.namespace, &out?)?);
        }
        Ok(Rendered { objects })
    }

    /// Istio lists what a release changes in behaviour as compatibility profiles: the target
    /// chart's `profile-compatibility-version-<installed minor>` pins each changed value
    /// back. A value counts when setting `compatibilityVersion` changes what the release
    /// renders for it (so a CNI setting in istiod's profile does not); nothing counts when
    /// the user already sets `compatibilityVersion` for that release.
    fn behaviour_changes(
        &self,
        installed: &semver::Version,
        merged: &Value,
        ctx: RenderContext<'_>,
    ) -> anyhow::Result<Vec<BehaviourChange>> {
        let minor = format!("{}.{}", installed.major, installed.minor);
        let mut asked = Vec::new();
        for r in &self.releases {
            let Some(profile) = r.chart.compatibility.get(&minor) else {
                continue;
            };
            let user = merged
                .get(&r.name)
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            if user.get("compatibilityVersion").is_some() {
                continue;
            }
            let mut pinned = user.clone();
            pinned["compatibilityVersion"] = Value::String(minor.clone());
            asked.push((r, profile, user, pinned));
        }
        let render = |r: &Release, values: &Value| {
            self.helm.template(
                &r.name,
                &r.chart.path,
                &r.namespace,
                values,
                ctx.kubernetes,
                ctx.upgrade,
            )
        };
        // Every render at once: each is a separate helm process, and a precheck waits for
        // all of them (about 0.2 s each, six for Istio's three charts).
        let renders: Vec<anyhow::Result<(String, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = asked
                .iter()
                .map(|(r, _, user, pinned)| {
                    (
                        s.spawn(move || render(r, user)),
                        s.spawn(move || render(r, pinned)),
                    )
                })
                .collect();
            let joined = |h: std::thread::ScopedJoinHandle<'_, _>| h.join().expect("helm thread");
            handles
                .into_iter()
                .map(|(now, then)| Ok((joined(now)?, joined(then)?)))
                .collect()
        });
        let mut out = Vec::new();
        for ((r, profile, _, _), rendered) in asked.iter().zip(renders) {
            let (now, then) = rendered?;
            // By line, through a set: the base chart renders the CRDs (tens of thousands of
            // lines), where a substring search of each line in the whole render took seconds.
            let now: HashSet<&str> = now.lines().collect();
            let differing: Vec<&str> = then.lines().filter(|l| !now.contains(l)).collect();
            for (path, old) in tree::leaves(profile) {
                let key = path.rsplit('.').next().unwrap_or(&path);
                if differing.iter().any(|l| l.contains(key)) {
                    out.push(BehaviourChange {
                        component: r.name.clone(),
                        path,
                        old,
                        keep: format!("--set {}:compatibilityVersion={minor}", r.name),
                    });
                }
            }
        }
        Ok(out)
    }

    fn chart_record(&self, name: &str) -> anyhow::Result<Option<Value>> {
        match self.releases.iter().find(|r| r.name == name) {
            Some(r) => Ok(Some(r.chart.record()?)),
            None => Ok(None),
        }
    }

    /// The charts of `version` beside these (`istio-1.29.6` next to `istio-1.30.3`).
    fn release_of(&self, version: &str) -> Option<Box<dyn Source>> {
        let parent = self.dir.parent()?;
        let dir = parent.join(format!("istio-{version}"));
        let helm = Some(self.helm.path.as_path());
        let found = Charts::load(&dir, helm, &self.gateways).ok()?;
        Some(Box::new(found))
    }
}

/// The objects of one release's `helm template` output, tagged with the release; a
/// namespaced object without a namespace goes to the release's, as Helm applies it.
pub fn documents(release: &str, namespace: &str, manifest: &str) -> anyhow::Result<Vec<Object>> {
    let mut out = Vec::new();
    for doc in manifest.split("\n---").map(|d| d.trim_start_matches("---")) {
        let source = doc
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .unwrap_or_default();
        let mut value: Value = serde_yaml::from_str(doc)
            .map_err(|e| anyhow::anyhow!("helm's output for {release} ({source}): {e}"))?;
        if value.is_null() {
            continue;
        }
        if value["metadata"]["namespace"].is_null() && !cluster_scoped(&value) {
            value["metadata"]["namespace"] = Value::String(namespace.into());
        }
        // `istiod/templates/deployment.yaml` → `istiod/deployment.yaml` under the release.
        let file = source.rsplit('/').next().unwrap_or(source);
        out.push(Object {
            component: release.to_string(),
            source: format!("{release}/{file}"),
            value,
        });
    }
    Ok(out)
}

/// Kinds without a namespace among what Istio's charts render.
fn cluster_scoped(o: &Value) -> bool {
    matches!(
        o["kind"].as_str(),
        Some(
            "CustomResourceDefinition"
                | "ClusterRole"
                | "ClusterRoleBinding"
                | "MutatingWebhookConfiguration"
                | "ValidatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "Namespace"
                | "PriorityClass"
        )
    )
}
