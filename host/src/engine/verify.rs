//! Reading back what runs after an apply or a restore: every workload's template, rollout
//! and pods on the images expected (a container the injector fills in, `image: auto`, on the
//! control plane's version), and the control plane on the target version.

use serde::Serialize;
use serde_json::Value;

use crate::base::object::{ObjectKey, Rendered};
use crate::cluster::kube::Kube;
use crate::cluster::wait;
use crate::engine::failure::Failure;
use crate::installed::state;
use crate::release::bundle::{Component, Role};

/// The image a pod template gives a container that its injection webhook fills in when
/// the pod is created (Istio's gateway chart: `image: auto`, which the injector replaces
/// with the control plane's proxy image). Its pods run the image the control plane
/// injects, not this one.
pub const INJECTED_IMAGE: &str = "auto";

/// Whether a pod's container runs what its template asks for: the same image or, for a
/// container the injector fills in ([`INJECTED_IMAGE`]), an injected image at the control
/// plane's version (any injected image when that version is not known).
fn runs_expected(template_image: &str, running: &str, control_plane: Option<&str>) -> bool {
    if template_image != INJECTED_IMAGE {
        return running == template_image;
    }
    running != INJECTED_IMAGE
        && control_plane.is_none_or(|v| {
            state::image_version(running).is_some_and(|t| crate::base::version::runs_release(&t, v))
        })
}

/// A workload as it must end up: its pod template's containers and images.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `matchLabels` of the selector: how its pods are found.
    pub selector: String,
    /// (container name, image) of the pod template.
    pub images: Vec<(String, String)>,
}

/// The Deployments and DaemonSets among `objects`.
pub fn workloads<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Vec<Workload> {
    objects
        .into_iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Deployment" | "DaemonSet")))
        .map(|o| Workload {
            kind: o["kind"].as_str().unwrap_or_default().to_string(),
            namespace: o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            selector: o["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            images: containers(&o["spec"]["template"]["spec"]),
        })
        .collect()
}

fn containers(pod_spec: &Value) -> Vec<(String, String)> {
    pod_spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["image"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one workload really runs, read from the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub workload: String,
    /// The pod template's images.
    pub template: Vec<String>,
    /// Images of the pods that are not terminating, with how many are ready.
    pub pods: Vec<String>,
    pub ready: String,
    /// What differs from what was expected (empty: as expected).
    pub problems: Vec<String>,
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs {} ({} ready)",
            self.workload,
            if self.pods.is_empty() {
                "no pods".to_string()
            } else {
                self.pods.join(", ")
            },
            self.ready
        )?;
        if !self.problems.is_empty() {
            write!(f, ": {}", self.problems.join("; "))?;
        }
        Ok(())
    }
}

/// Read back each workload: its template, its rollout and every pod's images. A container
/// the injector fills in must run the `control_plane` version (when known).
pub async fn observe(
    cluster: &dyn Kube,
    expected: &[Workload],
    control_plane: Option<&str>,
) -> anyhow::Result<Vec<Observed>> {
    let mut out = Vec::new();
    for w in expected {
        out.push(observe_one(cluster, w, control_plane).await?);
    }
    Ok(out)
}

/// One workload read back: its template, its rollout and its pods' images.
async fn observe_one(
    cluster: &dyn Kube,
    w: &Workload,
    control_plane: Option<&str>,
) -> anyhow::Result<Observed> {
    let key = ObjectKey {
        api_version: "apps/v1".into(),
        kind: w.kind.clone(),
        namespace: Some(w.namespace.clone()),
        name: w.name.clone(),
    };
    let workload = format!("{} {}/{}", w.kind, w.namespace, w.name);
    let Some(live) = cluster.get(&key).await? else {
        return Ok(Observed {
            workload,
            template: vec![],
            pods: vec![],
            ready: "0/0".into(),
            problems: vec!["missing".into()],
        });
    };
    let template = containers(&live["spec"]["template"]["spec"]);
    let pods = cluster
        .list("v1", "Pod", Some(&w.namespace), Some(&w.selector))
        .await?;
    let pods: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    let mut problems = Vec::new();
    if template != w.images {
        problems.push(format!(
            "template has {}, expected {}",
            images_text(&template),
            images_text(&w.images)
        ));
    }
    if let wait::Rollout::Progressing { message, .. } | wait::Rollout::Failed { message } =
        wait::rollout(&live)
    {
        problems.push(format!("rollout not complete: {message}"));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut ready = 0;
    for p in &pods {
        let running = containers(&p["spec"]);
        seen.insert(images_text(&running));
        if state::pod_ready(p) {
            ready += 1;
        }
        problems.extend(pod_problem(p, &running, w, control_plane));
    }
    if pods.is_empty() && w.kind == "Deployment" && live["spec"]["replicas"] != 0 {
        problems.push("no pods".into());
    }
    Ok(Observed {
        workload,
        template: template.iter().map(|(_, i)| i.clone()).collect(),
        pods: seen.into_iter().collect(),
        ready: format!("{ready}/{}", pods.len()),
        problems,
    })
}

/// What is wrong with one pod: an image other than expected, or not ready.
fn pod_problem(
    p: &Value,
    running: &[(String, String)],
    w: &Workload,
    control_plane: Option<&str>,
) -> Option<String> {
    let wrong = w.images.iter().any(|want| {
        running
            .iter()
            .any(|r| r.0 == want.0 && !runs_expected(&want.1, &r.1, control_plane))
    });
    let ready = state::pod_ready(p);
    (wrong || !ready).then(|| {
        format!(
            "pod {} runs {}{}",
            p["metadata"]["name"].as_str().unwrap_or("?"),
            images_text(running),
            if ready { "" } else { ", not ready" }
        )
    })
}

fn images_text(images: &[(String, String)]) -> String {
    images
        .iter()
        .map(|(_, i)| i.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Every workload runs exactly the expected images in every pod, all ready, rollout done;
/// a container the injector fills in runs the `control_plane` version (when known).
pub async fn verify_workloads(
    cluster: &dyn Kube,
    expected: &[Workload],
    control_plane: Option<&str>,
) -> Result<(), Failure> {
    let observed = observe(cluster, expected, control_plane)
        .await
        .map_err(|e| Failure::Verify(format!("{e:#}")))?;
    let wrong: Vec<String> = observed
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(|o| o.to_string())
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Failure::Verify(wrong.join("; ")))
    }
}

/// The workloads the bundle's `control-plane` components declare for readiness, as this
/// release renders them: what must report the target version afterwards.
pub(crate) fn control_plane_workloads(
    layout: &[Component],
    namespace: &str,
    rendered: &Rendered,
) -> Vec<(Workload, Value)> {
    let declared = layout
        .iter()
        .filter(|c| c.role == Role::ControlPlane)
        .flat_map(|c| &c.readiness);
    declared
        .filter_map(|r| {
            rendered
                .objects
                .iter()
                .find(|o| o.kind() == r.kind && o.name() == r.name)
        })
        .filter_map(|o| {
            let w = workloads([&o.value]).pop()?;
            let labels = o.value["spec"]["template"]["metadata"]["labels"].clone();
            Some((
                Workload {
                    namespace: o.namespace().unwrap_or(namespace).to_string(),
                    ..w
                },
                labels,
            ))
        })
        .collect()
}

/// Every pod of a control-plane workload (the pods carrying all its pod template's labels,
/// so another revision's pods beside it are not counted) runs `target_version`, as its
/// main container's image tag says, and is ready.
pub(crate) async fn verify_version(
    cluster: &dyn Kube,
    (w, template_labels): &(Workload, Value),
    target_version: &str,
) -> Result<(), Failure> {
    let failed = |e: crate::cluster::client::Error| Failure::Verify(format!("{e:#}"));
    let key = ObjectKey {
        api_version: "apps/v1".into(),
        kind: w.kind.clone(),
        namespace: Some(w.namespace.clone()),
        name: w.name.clone(),
    };
    if cluster.get(&key).await.map_err(failed)?.is_none() {
        return Err(Failure::Verify(format!(
            "no {} {} in {}",
            w.name, w.kind, w.namespace
        )));
    }
    let main = w
        .images
        .first()
        .map(|(name, _)| name.as_str())
        .unwrap_or_default();
    let pods = cluster
        .list("v1", "Pod", Some(&w.namespace), Some(&w.selector))
        .await
        .map_err(failed)?;
    let ours = pods.iter().filter(|p| {
        p["metadata"]["deletionTimestamp"].is_null()
            && template_labels
                .as_object()
                .is_none_or(|l| l.iter().all(|(k, v)| &p["metadata"]["labels"][k] == v))
    });
    let mut counted = 0;
    let mut wrong = Vec::new();
    for p in ours {
        let Some(version) = state::container_image(&p["spec"], main).and_then(state::image_version)
        else {
            continue;
        };
        counted += 1;
        let ready = state::pod_ready(p);
        if !crate::base::version::runs_release(&version, target_version) || !ready {
            wrong.push(format!(
                "{} runs {version}{}",
                p["metadata"]["name"].as_str().unwrap_or("?"),
                if ready { "" } else { " (not ready)" }
            ));
        }
    }
    if counted == 0 || !wrong.is_empty() {
        wrong.sort();
        return Err(Failure::Verify(format!(
            "expected every {} pod at {target_version}: {}",
            w.name,
            if wrong.is_empty() {
                "no pods".to_string()
            } else {
                wrong.join(", ")
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_injected_container_runs_the_control_planes_version() {
        // (template image, running image, control plane version, as expected)
        let cases = [
            (
                "docker.io/istio/proxyv2:1.8.6",
                "docker.io/istio/proxyv2:1.8.6",
                Some("1.9.5"),
                true,
            ),
            (
                "docker.io/istio/proxyv2:1.8.6",
                "docker.io/istio/proxyv2:1.9.5",
                Some("1.9.5"),
                false,
            ),
            (
                "auto",
                "docker.io/istio/proxyv2:1.30.3",
                Some("1.30.3"),
                true,
            ),
            (
                "auto",
                "example.com/mirror/proxyv2:1.30.3-distroless",
                Some("1.30.3"),
                true,
            ),
            (
                "auto",
                "docker.io/istio/proxyv2:1.29.6",
                Some("1.30.3"),
                false,
            ),
            ("auto", "docker.io/istio/proxyv2:1.29.6", None, true),
            // not injected: the pod could not even pull `auto`
            ("auto", "auto", Some("1.30.3"), false),
            ("auto", "auto", None, false),
        ];
        for (template, running, version, want) in cases {
            assert_eq!(
                runs_expected(template, running, version),
                want,
                "{template} running {running} at {version:?}"
            );
        }
    }
}
