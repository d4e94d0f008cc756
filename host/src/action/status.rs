//! `meshup status`: the installed release, its workloads and their readiness, the
//! version every control-plane pod runs, and data-plane proxy versions by namespace.

use serde::Serialize;
use serde_json::Value;

use super::{Env, default_namespace, product};
use crate::cluster::wait::{DeploymentStatus, Rollout, StatusViewer};
use crate::engine::dataplane;
use crate::installed::state::{self, Installed};
use crate::release::discovery::Discovery;

pub struct Status {
    pub namespace: Option<String>,
    /// How the control plane and the sidecars are found (no bundle is named: the CLI
    /// gives the newest shipped bundle's, `shipped::newest`).
    pub discovery: Discovery,
}

/// One Deployment of the control-plane namespace and how its rollout stands.
#[derive(Debug, Serialize)]
pub struct Workload {
    pub name: String,
    pub component: String,
    pub ready: String,
    pub version: String,
    pub state: String,
}

/// What `meshup status` found.
#[derive(Debug)]
pub struct Report {
    pub namespace: String,
    pub installed: Installed,
    pub workloads: Vec<Workload>,
    pub data_plane: dataplane::Report,
}

/// The JSON document of a status report.
#[derive(Serialize)]
struct Doc<'a> {
    namespace: &'a str,
    kubernetes_version: &'a str,
    install_method: &'a str,
    release: Option<Value>,
    /// The Helm releases of the install, in any namespace, and what was left unread.
    helm_releases: &'a [crate::installed::helm::releases::Release],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    helm_notes: &'a [String],
    control_planes: &'a [state::ControlPlane],
    workloads: &'a [Workload],
    data_plane: &'a dataplane::Report,
}

impl Report {
    /// The one JSON document `-o json` prints.
    pub fn doc(&self) -> impl Serialize + '_ {
        let installed = &self.installed;
        let release = installed.release.as_ref().map(|r| {
            serde_json::json!({"revision": r.revision, "version": r.version, "status": r.status,
                "profile": r.profile, "digest": r.digest, "updated": r.finished.clone().unwrap_or(r.started.clone())})
        });
        Doc {
            namespace: &self.namespace,
            kubernetes_version: &installed.kubernetes_version,
            install_method: installed.method.name(),
            release,
            helm_releases: &installed.helm.releases,
            helm_notes: &installed.helm.notes,
            control_planes: &installed.control_planes,
            workloads: &self.workloads,
            data_plane: &self.data_plane,
        }
    }
}

impl Status {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Report> {
        let conn = env.connect().await?;
        let cluster = conn.kube.as_ref();
        let ns = self.namespace.as_deref().unwrap_or(default_namespace());
        let release = env.history(&conn, ns, product()).deployed().await?;
        let installed =
            crate::installed::discover::read(cluster, &self.discovery, ns, release).await?;
        let deployments = cluster
            .list("apps/v1", "Deployment", Some(ns), None)
            .await?;
        let workloads = deployments.iter().map(workload).collect();
        let version = installed.version().map(str::to_string);
        let data_plane = dataplane::report(cluster, &self.discovery, version, ns).await?;
        Ok(Report {
            namespace: ns.to_string(),
            installed,
            workloads,
            data_plane,
        })
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
        component: d["metadata"]["labels"][crate::base::object::COMPONENT_LABEL]
            .as_str()
            .unwrap_or("-")
            .to_string(),
        ready,
        version: state::image_version(image).unwrap_or_else(|| "-".into()),
        state,
    }
}
