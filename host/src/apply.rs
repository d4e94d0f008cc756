//! Applying a rendered release: component by component in bundle order, server-side
//! apply, a watch per readiness workload, then version verification and pruning.
//!
//! Used by install, upgrade, rollback and the automatic rollback alike, so every path
//! that changes the control plane waits and verifies the same way.

use std::time::{Duration, Instant};

use serde::Serialize;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::bundle::Component;
use crate::cluster::Cluster;
use crate::render::{self, ObjectKey, Rendered};
use crate::state;
use crate::ui::Ui;
use crate::wait;

#[derive(Debug, Clone)]
pub struct Options {
    pub readiness_timeout: Duration,
    /// Set by SIGINT/SIGTERM: finish the component in progress, then stop.
    pub interrupted: Arc<AtomicBool>,
}

/// How long each component took to apply and become ready.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentReport {
    pub name: String,
    pub objects: usize,
    pub ready: String,
    pub seconds: f64,
}

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
fn kind_rank(kind: &str) -> u8 {
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

/// Apply `rendered` component by component, waiting for each, then verify and prune.
pub async fn run(
    cluster: &Cluster,
    layout: &[Component],
    namespace: &str,
    rendered: &Rendered,
    prune: &[ObjectKey],
    target_version: &str,
    opts: &Options,
    ui: &Ui,
) -> Result<Report, Failure> {
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
        let mut objs: Vec<&render::Object> = rendered.component(&c.name).collect();
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
            ui,
        )
        .await?;
        let secs = t.elapsed().as_secs_f64();
        ui.say(format!(
            "  {} {:<18} {} objects applied{} in {secs:.1} s",
            ui.paint("✓", crate::ui::Color::Green),
            c.name,
            objs.len(),
            if ready.is_empty() {
                String::new()
            } else {
                format!(", {ready} ready")
            }
        ));
        components.push(ComponentReport {
            name: c.name.clone(),
            objects: objs.len(),
            ready,
            seconds: secs,
        });
    }
    if rendered
        .objects
        .iter()
        .any(|o| o.kind() == "Deployment" && o.name() == "istiod")
    {
        verify(cluster, namespace, target_version).await?;
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

/// Wait for every readiness workload of a component (that the release renders) at once.
async fn wait_component(
    cluster: &Cluster,
    namespace: &str,
    component: &str,
    refs: &[crate::bundle::ReadinessRef],
    rendered: &Rendered,
    opts: &Options,
    ui: &Ui,
) -> Result<String, Failure> {
    let deadline = Instant::now() + opts.readiness_timeout;
    let refs: Vec<_> = refs
        .iter()
        .filter(|r| {
            rendered
                .objects
                .iter()
                .any(|o| o.kind() == r.kind && o.name() == r.name)
        })
        .collect();
    let waits = refs.iter().map(|r| {
        let bar = ui.bar(&r.name, 1);
        async move {
            let mut last = (0, 0);
            let res = wait::until_rolled_out(
                cluster,
                &r.kind,
                namespace,
                &r.name,
                deadline,
                |ready, desired, msg| {
                    last = (ready, desired);
                    bar.update(ready, desired, msg);
                },
            )
            .await;
            match &res {
                Ok(_) => bar.finish("ready"),
                Err(e) => bar.finish(&format!("{e}")),
            }
            res.map(|_| format!("{} {}/{}", r.name, last.0, last.1))
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

/// Every control-plane pod of the in-place revision runs the target version.
pub async fn verify(
    cluster: &Cluster,
    namespace: &str,
    target_version: &str,
) -> Result<(), Failure> {
    let deployments = cluster
        .list("apps/v1", "Deployment", Some(namespace), Some("app=istiod"))
        .await
        .map_err(|e| Failure::Verify(format!("{e:#}")))?;
    let pods = cluster
        .list("v1", "Pod", Some(namespace), Some("app=istiod"))
        .await
        .map_err(|e| Failure::Verify(format!("{e:#}")))?;
    let cps = state::control_planes(&deployments, &pods);
    let Some(cp) = cps.iter().find(|c| c.revision == state::DEFAULT_REVISION) else {
        return Err(Failure::Verify(format!(
            "no istiod Deployment in {namespace}"
        )));
    };
    let wrong: Vec<String> = cp
        .pods
        .iter()
        .filter(|p| p.version != target_version || !p.ready)
        .map(|p| {
            format!(
                "{} runs {}{}",
                p.pod,
                p.version,
                if p.ready { "" } else { " (not ready)" }
            )
        })
        .collect();
    if cp.pods.is_empty() || !wrong.is_empty() {
        return Err(Failure::Verify(format!(
            "expected every istiod pod at {target_version}: {}",
            if wrong.is_empty() {
                "no pods".to_string()
            } else {
                wrong.join(", ")
            }
        )));
    }
    Ok(())
}
