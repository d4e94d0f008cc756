//! Applying a rendered release: component by component in bundle order, server-side
//! apply, a watch per readiness workload, then version verification and pruning.
//!
//! Used by install, upgrade, rollback and the automatic rollback alike, so every path
//! that changes the control plane waits and verifies the same way.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::base::object::{ObjectKey, Rendered};
use crate::cluster::kube::Kube;
use crate::cluster::wait;
use crate::engine::progress::{Event, Progress};
use crate::installed::state;
use crate::release::bundle::{Component, Role};

#[derive(Debug, Clone)]
pub struct Options {
    pub readiness_timeout: Duration,
    /// Set by SIGINT/SIGTERM: finish the component in progress, then stop.
    pub interrupted: Arc<AtomicBool>,
}

pub use crate::engine::progress::ComponentReport;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub components: Vec<ComponentReport>,
    pub pruned: Vec<String>,
    pub seconds: f64,
}

/// Where an apply stopped, so the caller can decide to roll back.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("applying {component}: {message}")]
    Apply { component: String, message: String },
    #[error("waiting for {component}: {source}")]
    NotReady {
        component: String,
        source: wait::WaitError,
    },
    #[error("verifying versions: {0}")]
    Verify(String),
    #[error("pruning: {0}")]
    Prune(String),
    #[error("interrupted after component {0}")]
    Interrupted(String),
}

/// Kinds that must exist before others (like Helm's install order).
pub fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "CustomResourceDefinition" => 1,
        "ServiceAccount" => 2,
        "ClusterRole" | "Role" => 3,
        "ClusterRoleBinding" | "RoleBinding" => 4,
        "ConfigMap" | "Secret" => 5,
        "Service" => 6,
        "Deployment" | "DaemonSet" => 7,
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => 9,
        _ => 8,
    }
}

/// What one apply puts in place: a rendered release, in its bundle's component order.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The bundle's components, in apply order, with their readiness workloads.
    pub layout: &'a [Component],
    pub namespace: &'a str,
    pub rendered: &'a Rendered,
    /// Objects to delete once every component is ready and verified.
    pub prune: &'a [ObjectKey],
    /// The control-plane version the cluster must report afterwards.
    pub version: &'a str,
}

/// Apply `target.rendered` component by component, waiting for each, then verify and prune.
pub async fn run(
    cluster: &dyn Kube,
    target: &Target<'_>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Report, Failure> {
    let Target {
        layout,
        namespace,
        rendered,
        prune,
        version: target_version,
    } = *target;
    let started = Instant::now();
    let mut components = Vec::new();
    for c in layout {
        if opts.interrupted.load(Ordering::SeqCst) {
            let last = components
                .last()
                .map(|c: &ComponentReport| c.name.clone())
                .unwrap_or_else(|| "none".into());
            return Err(Failure::Interrupted(last));
        }
        let mut objs: Vec<&crate::base::object::Object> = rendered.component(&c.name).collect();
        if objs.is_empty() {
            continue;
        }
        objs.sort_by_key(|o| kind_rank(o.kind()));
        let t = Instant::now();
        for o in &objs {
            cluster
                .apply(&o.value, false)
                .await
                .map_err(|e| Failure::Apply {
                    component: c.name.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        let ready = wait_component(
            cluster,
            namespace,
            &c.name,
            &c.readiness,
            rendered,
            opts,
            progress,
        )
        .await?;
        components.push(ComponentReport::done(
            progress,
            &c.name,
            objs.len(),
            ready,
            t,
            "applied",
        ));
    }
    verify_workloads(
        cluster,
        &workloads(rendered.objects.iter().map(|o| &o.value)),
        Some(target_version),
    )
    .await?;
    for w in control_plane_workloads(layout, namespace, rendered) {
        verify_version(cluster, &w, target_version).await?;
    }
    let mut pruned = Vec::new();
    for key in prune {
        cluster
            .delete(key)
            .await
            .map_err(|e| Failure::Prune(format!("{e:#}")))?;
        pruned.push(key.to_string());
    }
    Ok(Report {
        components,
        pruned,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Wait for every readiness workload of a component (that the release renders) at once,
/// each in the namespace it is rendered in. A component that states none is waited for by
/// what it renders (`release::components`).
async fn wait_component(
    cluster: &dyn Kube,
    namespace: &str,
    component: &str,
    refs: &[crate::release::source::ReadinessRef],
    rendered: &Rendered,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let derived;
    let refs = if refs.is_empty() {
        derived = crate::release::components::readiness(rendered, component);
        &derived
    } else {
        refs
    };
    let targets: Vec<(String, String, String)> = refs
        .iter()
        .filter_map(|r| {
            let o = rendered
                .objects
                .iter()
                .find(|o| o.kind() == r.kind && o.name() == r.name)?;
            let ns = r
                .namespace
                .as_deref()
                .or(o.namespace())
                .unwrap_or(namespace);
            Some((r.kind.clone(), ns.to_string(), r.name.clone()))
        })
        .collect();
    wait_all(cluster, component, &targets, opts, progress).await
}

/// Wait for the given workloads (a restore waits for every one it put back).
pub async fn wait_workloads(
    cluster: &dyn Kube,
    component: &str,
    workloads: &[Workload],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let targets: Vec<(String, String, String)> = workloads
        .iter()
        .map(|w| (w.kind.clone(), w.namespace.clone(), w.name.clone()))
        .collect();
    wait_all(cluster, component, &targets, opts, progress).await
}

/// Watch every (kind, namespace, name) until rolled out, all at once, within the timeout.
async fn wait_all(
    cluster: &dyn Kube,
    component: &str,
    targets: &[(String, String, String)],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<String, Failure> {
    let deadline = Instant::now() + opts.readiness_timeout;
    let waits = targets.iter().map(|(kind, namespace, name)| {
        progress.event(Event::WaitStarted { workload: name });
        async move {
            let mut last = (0, 0);
            let res = cluster
                .wait_rolled_out(
                    kind,
                    namespace,
                    name,
                    deadline,
                    &mut |ready, desired, msg| {
                        last = (ready, desired);
                        progress.event(Event::Waiting {
                            workload: name,
                            ready,
                            desired,
                            message: msg,
                        });
                    },
                )
                .await;
            let outcome = match &res {
                Ok(_) => "ready".to_string(),
                Err(e) => e.to_string(),
            };
            progress.event(Event::WaitEnded {
                workload: name,
                outcome: &outcome,
            });
            res.map(|_| format!("{name} {}/{}", last.0, last.1))
        }
    });
    let results = futures::future::join_all(waits).await;
    let mut ready = Vec::new();
    for r in results {
        ready.push(r.map_err(|source| Failure::NotReady {
            component: component.to_string(),
            source,
        })?);
    }
    Ok(ready.join(", "))
}

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
        && control_plane.is_none_or(|v| state::image_version(running).as_deref() == Some(v))
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
        let key = ObjectKey {
            api_version: "apps/v1".into(),
            kind: w.kind.clone(),
            namespace: Some(w.namespace.clone()),
            name: w.name.clone(),
        };
        let workload = format!("{} {}/{}", w.kind, w.namespace, w.name);
        let Some(live) = cluster.get(&key).await? else {
            out.push(Observed {
                workload,
                template: vec![],
                pods: vec![],
                ready: "0/0".into(),
                problems: vec!["missing".into()],
            });
            continue;
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
            let wrong: Vec<&(String, String)> = w
                .images
                .iter()
                .filter(|want| {
                    running
                        .iter()
                        .any(|r| r.0 == want.0 && !runs_expected(&want.1, &r.1, control_plane))
                })
                .collect();
            if !wrong.is_empty() || !state::pod_ready(p) {
                problems.push(format!(
                    "pod {} runs {}{}",
                    p["metadata"]["name"].as_str().unwrap_or("?"),
                    images_text(&running),
                    if state::pod_ready(p) {
                        ""
                    } else {
                        ", not ready"
                    }
                ));
            }
        }
        if pods.is_empty() && w.kind == "Deployment" && live["spec"]["replicas"] != 0 {
            problems.push("no pods".into());
        }
        out.push(Observed {
            workload,
            template: template.iter().map(|(_, i)| i.clone()).collect(),
            pods: seen.into_iter().collect(),
            ready: format!("{ready}/{}", pods.len()),
            problems,
        });
    }
    Ok(out)
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
fn control_plane_workloads(
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
async fn verify_version(
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
        if version != target_version || !ready {
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
