//! Applying a rendered release: component by component in bundle order, server-side
//! apply, a watch per readiness workload, then version verification and pruning.
//!
//! Used by install, upgrade, rollback and the automatic rollback alike, so every path
//! that changes the control plane waits and verifies the same way.

use std::time::{Duration, Instant};

use serde::Serialize;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::base::object::{ObjectKey, Rendered};
use crate::cluster::kube::Kube;
use crate::engine::progress::{Event, Progress};
use crate::installed::installers;
use crate::release::bundle::Component;

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

pub use crate::engine::failure::Failure;

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
                .apply(&o.value, false, installers::field_manager(&o.value))
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

pub use crate::engine::verify::{
    INJECTED_IMAGE, Observed, Workload, observe, verify_workloads, workloads,
};
use crate::engine::verify::{control_plane_workloads, verify_version};
