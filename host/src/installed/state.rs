//! What is installed: control planes (by revision) and the versions their pods really
//! run, how the mesh was installed (meshup, istioctl, Helm), and the Kubernetes version.
//!
//! Versions come from the running pods' images, not from labels: a label says what
//! someone meant to install, the image says what runs.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::installed::history::Release;
use crate::release::discovery::Discovery;

pub use crate::release::discovery::DEFAULT_REVISION;

/// How the control plane got there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum InstallMethod {
    /// Nothing installed.
    None,
    /// meshup history exists.
    Meshup,
    /// The release's own installer (`istioctl install`): its installed-state record keeps
    /// the profile and the fully expanded spec (profile merged in; `plan::previous` takes
    /// the profile back out).
    Istioctl { profile: String, spec: Value },
    /// Helm labels/annotations on the control plane.
    Helm { release: String },
    /// A control plane with none of the above marks.
    Unknown,
}

impl InstallMethod {
    pub fn name(&self) -> &'static str {
        match self {
            InstallMethod::None => "none",
            InstallMethod::Meshup => "meshup",
            InstallMethod::Istioctl { .. } => "istioctl",
            InstallMethod::Helm { .. } => "helm",
            InstallMethod::Unknown => "unknown",
        }
    }
}

/// One control plane (the in-place `default` revision or a canary such as `1-9-5`).
#[derive(Debug, Clone, Serialize)]
pub struct ControlPlane {
    pub revision: String,
    pub deployment: String,
    /// The version most pods run (the newest if tied).
    pub version: Option<String>,
    /// Every pod and the version its control-plane container runs.
    pub pods: Vec<PodVersion>,
    pub ready: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodVersion {
    pub pod: String,
    pub version: String,
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    pub kubernetes_version: String,
    pub namespace: String,
    pub control_planes: Vec<ControlPlane>,
    pub method: InstallMethod,
    #[serde(skip)]
    pub release: Option<Release>,
    /// The Helm releases of the Istio install, in any namespace (none when Helm did not
    /// install it).
    pub helm: crate::installed::helm::releases::Found,
    /// meshup's history could not be read (the API server refused it): `release` and the
    /// method are what the cluster shows without it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub history_unreadable: bool,
}

impl Installed {
    /// The in-place control plane (revision `default`).
    pub fn in_place(&self) -> Option<&ControlPlane> {
        self.control_planes
            .iter()
            .find(|c| c.revision == DEFAULT_REVISION)
    }

    /// The version of the in-place control plane, if one runs.
    pub fn version(&self) -> Option<&str> {
        self.in_place().and_then(|c| c.version.as_deref())
    }

    /// The revision meshup would act on: `default` if present, else the only one there is.
    pub fn revision(&self) -> String {
        match (self.in_place(), self.control_planes.as_slice()) {
            (Some(c), _) => c.revision.clone(),
            (None, [only]) => only.revision.clone(),
            _ => DEFAULT_REVISION.to_string(),
        }
    }

    /// Whether the pods of the in-place control plane disagree on their version.
    pub fn mixed_versions(&self) -> bool {
        self.in_place()
            .map(|c| {
                c.pods
                    .iter()
                    .any(|p| Some(&p.version) != c.version.as_ref())
            })
            .unwrap_or(false)
    }
}

pub use crate::base::version::image_version;

/// The image of a named container in a pod or pod template spec.
pub fn container_image<'a>(spec: &'a Value, name: &str) -> Option<&'a str> {
    spec["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)?["image"]
        .as_str()
}

pub fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .unwrap_or(false)
        && pod["metadata"]["deletionTimestamp"].is_null()
}

/// Group the control plane's Deployments and their pods by revision.
pub fn control_planes(
    discovery: &Discovery,
    deployments: &[Value],
    pods: &[Value],
) -> Vec<ControlPlane> {
    let container = discovery.control_plane.container.as_str();
    let mut out = Vec::new();
    for d in deployments {
        let revision = discovery.revision_of(&d["metadata"]["labels"]);
        let mut versions: BTreeMap<String, usize> = BTreeMap::new();
        let mut pod_versions = Vec::new();
        for p in pods
            .iter()
            .filter(|p| discovery.revision_of(&p["metadata"]["labels"]) == revision)
        {
            if !p["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let Some(v) = container_image(&p["spec"], container).and_then(image_version) else {
                continue;
            };
            *versions.entry(v.clone()).or_default() += 1;
            pod_versions.push(PodVersion {
                pod: p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                version: v,
                ready: pod_ready(p),
            });
        }
        // With no pods yet, fall back to the Deployment's template.
        let template =
            container_image(&d["spec"]["template"]["spec"], container).and_then(image_version);
        let version = versions
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then_with(|| crate::base::version::cmp(a.0, b.0))
            })
            .map(|(v, _)| v.clone())
            .or(template);
        let ready = format!(
            "{}/{}",
            d["status"]["readyReplicas"].as_u64().unwrap_or(0),
            d["spec"]["replicas"].as_u64().unwrap_or(1)
        );
        pod_versions.sort_by(|a, b| a.pod.cmp(&b.pod));
        out.push(ControlPlane {
            revision,
            deployment: d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            version,
            pods: pod_versions,
            ready,
        });
    }
    out.sort_by(|a, b| {
        (a.revision != DEFAULT_REVISION, &a.revision)
            .cmp(&(b.revision != DEFAULT_REVISION, &b.revision))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_tags() {
        assert_eq!(
            image_version("docker.io/istio/pilot:1.7.4-distroless").as_deref(),
            Some("1.7.4")
        );
        assert_eq!(
            image_version("localhost:5000/istio/pilot:1.8.6").as_deref(),
            Some("1.8.6")
        );
        assert_eq!(image_version("pilot").as_deref(), None);
    }

    fn pod(name: &str, rev: &str, tag: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "istiod", "istio.io/rev": rev}},
               "spec": {"containers": [{"name": "discovery", "image": format!("docker.io/istio/pilot:{tag}")}]},
               "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn canary_does_not_confuse_version_detection() {
        let deps = vec![
            json!({"metadata": {"name": "istiod-canary", "labels": {"app": "istiod", "istio.io/rev": "canary"}}, "spec": {"replicas": 1}}),
            json!({"metadata": {"name": "istiod", "labels": {"app": "istiod"}}, "spec": {"replicas": 2}}),
        ];
        let pods = vec![
            pod("a", "default", "1.7.8"),
            pod("b", "default", "1.7.8"),
            pod("c", "canary", "1.8.6"),
        ];
        let cps = control_planes(&crate::release::shipped::newest().discovery, &deps, &pods);
        assert_eq!(cps[0].revision, "default");
        assert_eq!(cps[0].version.as_deref(), Some("1.7.8"));
        assert_eq!(cps[1].version.as_deref(), Some("1.8.6"));
    }

    #[test]
    fn mixed_versions_are_visible() {
        let deps = vec![
            json!({"metadata": {"name": "istiod", "labels": {"app": "istiod"}}, "spec": {"replicas": 2}}),
        ];
        let pods = vec![pod("a", "default", "1.7.8"), pod("b", "default", "1.8.6")];
        let installed = Installed {
            kubernetes_version: "v1.30.0".into(),
            namespace: "istio-system".into(),
            control_planes: control_planes(
                &crate::release::shipped::newest().discovery,
                &deps,
                &pods,
            ),
            method: InstallMethod::Unknown,
            release: None,
            helm: Default::default(),
            history_unreadable: false,
        };
        assert!(installed.mixed_versions());
        assert_eq!(installed.in_place().unwrap().pods.len(), 2);
    }

    /// Nothing of the control plane's names is built in: another release's facts find
    /// its control plane by its own revision label and version container.
    #[test]
    fn control_planes_are_found_by_the_bundles_facts() {
        let facts: Discovery = serde_yaml::from_str(
            "controlPlane: {selector: app=server, container: server}\nrevisionLabel: example.com/rev\nproxyContainer: envoy",
        )
        .unwrap();
        let deps = vec![
            json!({"metadata": {"name": "server", "labels": {"app": "server"}}, "spec": {"replicas": 1}}),
            json!({"metadata": {"name": "server-next", "labels": {"app": "server", "example.com/rev": "next"}}, "spec": {"replicas": 1}}),
        ];
        let pod = |name: &str, labels: Value, tag: &str| {
            json!({"metadata": {"name": name, "labels": labels},
                   "spec": {"containers": [{"name": "sidecar", "image": "example.com/other:9.9.9"},
                                           {"name": "server", "image": format!("example.com/server:{tag}")}]}})
        };
        let pods = vec![
            pod("a", json!({"app": "server"}), "2.0.0"),
            pod(
                "b",
                json!({"app": "server", "example.com/rev": "next"}),
                "3.0.0",
            ),
        ];
        let cps = control_planes(&facts, &deps, &pods);
        let found: Vec<(&str, Option<&str>)> = cps
            .iter()
            .map(|c| (c.revision.as_str(), c.version.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![(DEFAULT_REVISION, Some("2.0.0")), ("next", Some("3.0.0"))]
        );
    }
}
