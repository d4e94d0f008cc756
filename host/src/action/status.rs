//! `meshup status`: the installed release, its workloads and their readiness, the
//! version every control-plane pod runs, and data-plane proxy versions by namespace.

use serde::Serialize;
use serde_json::Value;

use super::{DEFAULT_NAMESPACE, Env, PRODUCT, print_json};
use crate::dataplane;
use crate::exit::Code;
use crate::state::{self, Installed};
use crate::ui::table;
use crate::wait::{DeploymentStatus, Rollout, StatusViewer};

pub struct Status {
    pub namespace: Option<String>,
}

#[derive(Serialize)]
struct Workload {
    name: String,
    component: String,
    ready: String,
    version: String,
    state: String,
}

#[derive(Serialize)]
struct Doc<'a> {
    namespace: &'a str,
    kubernetes_version: &'a str,
    install_method: &'a str,
    release: Option<serde_json::Value>,
    control_planes: &'a [state::ControlPlane],
    workloads: Vec<Workload>,
    data_plane: &'a dataplane::Report,
}

impl Status {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let conn = env.connect().await?;
        let cluster = conn.kube.as_ref();
        let ns = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let release = env.history(&conn, ns, PRODUCT).deployed().await?;
        let installed = state::read(cluster, ns, release).await?;
        let deployments = cluster
            .list("apps/v1", "Deployment", Some(ns), None)
            .await?;
        let workloads: Vec<Workload> = deployments.iter().map(workload).collect();
        let dp = dataplane::report(cluster, installed.version().map(str::to_string), ns).await?;
        if env.ui.json() {
            let release = installed.release.as_ref().map(|r| {
                serde_json::json!({"revision": r.revision, "version": r.version, "status": r.status,
                    "profile": r.profile, "digest": r.digest, "updated": r.finished.clone().unwrap_or(r.started.clone())})
            });
            print_json(&Doc {
                namespace: ns,
                kubernetes_version: &installed.kubernetes_version,
                install_method: installed.method.name(),
                release,
                control_planes: &installed.control_planes,
                workloads,
                data_plane: &dp,
            })?;
        } else {
            print_text(env, &installed, &workloads, &dp);
        }
        Ok(Code::Ok)
    }
}

fn workload(d: &Value) -> Workload {
    let (ready, state) = match DeploymentStatus.status(d) {
        Rollout::Done { ready, desired } => (format!("{ready}/{desired}"), "ready".to_string()),
        Rollout::Progressing {
            ready,
            desired,
            message,
        } => (format!("{ready}/{desired}"), message),
        Rollout::Failed { message } => ("-".into(), message),
    };
    let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default();
    Workload {
        name: d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        component: d["metadata"]["labels"][crate::render::COMPONENT_LABEL]
            .as_str()
            .unwrap_or("-")
            .to_string(),
        ready,
        version: state::image_version(image).unwrap_or_else(|| "-".into()),
        state,
    }
}

fn print_text(env: &Env, installed: &Installed, workloads: &[Workload], dp: &dataplane::Report) {
    let ui = &env.ui;
    match &installed.release {
        Some(r) => ui.say(format!(
            "release: revision {} ({}), {} {} profile {}, {}",
            r.revision,
            r.status,
            r.bundle,
            r.version,
            r.profile,
            r.finished.as_deref().unwrap_or(&r.started)
        )),
        None => ui.say(format!(
            "release: none recorded by meshup (install method: {})",
            installed.method.name()
        )),
    }
    ui.say(format!("kubernetes: {}", installed.kubernetes_version));
    if installed.control_planes.is_empty() {
        ui.say(format!(
            "control plane: none in namespace {}",
            installed.namespace
        ));
    }
    for cp in &installed.control_planes {
        let pods: Vec<String> = cp
            .pods
            .iter()
            .map(|p| format!("{}={}", p.pod, p.version))
            .collect();
        ui.say(format!(
            "control plane: revision {} ({}) at {}, ready {}; pods: {}",
            cp.revision,
            cp.deployment,
            cp.version.as_deref().unwrap_or("unknown"),
            cp.ready,
            if pods.is_empty() {
                "none".into()
            } else {
                pods.join(", ")
            }
        ));
    }
    if !workloads.is_empty() {
        let rows: Vec<Vec<String>> = workloads
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.component.clone(),
                    w.ready.clone(),
                    w.version.clone(),
                    w.state.clone(),
                ]
            })
            .collect();
        ui.say("");
        ui.say(table(
            &["WORKLOAD", "COMPONENT", "READY", "VERSION", "STATE"],
            &rows,
        ));
    }
    ui.say("");
    ui.say(dataplane_summary(dp));
}

/// Proxy versions by namespace, as a table.
pub fn dataplane_summary(dp: &dataplane::Report) -> String {
    let by_ns = dp.by_namespace();
    if by_ns.is_empty() {
        return "data plane: no pods with an istio-proxy sidecar".into();
    }
    let rows: Vec<Vec<String>> = by_ns
        .iter()
        .map(|(ns, versions)| {
            let vs = dataplane::sorted_versions(versions.keys().copied());
            let text: Vec<String> = vs
                .iter()
                .map(|v| format!("{v} ({})", versions[v]))
                .collect();
            let outdated = match &dp.control_plane_version {
                Some(cp) => versions
                    .iter()
                    .filter(|(v, _)| *v != cp)
                    .map(|(_, n)| n)
                    .sum::<usize>(),
                None => 0,
            };
            vec![ns.to_string(), text.join(", "), outdated.to_string()]
        })
        .collect();
    format!(
        "data plane ({} pods with sidecars):\n{}",
        dp.pods,
        table(&["NAMESPACE", "PROXY VERSIONS (PODS)", "OUTDATED"], &rows)
    )
}
