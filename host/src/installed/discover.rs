//! Reading what is installed from the cluster: the control planes and the versions their
//! pods run, the Kubernetes version, and who installed it (each installer's `detect`).

use serde_json::Value;

use crate::cluster::kube::Kube;
use crate::installed::history::Release;
use crate::installed::installer::Installer as _;
use crate::installed::state::{InstallMethod, Installed, control_planes};
use crate::release::discovery::Discovery;

/// Read the installed state of the mesh in `namespace`, found as `discovery` says.
pub async fn read(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
    release: Option<Release>,
) -> anyhow::Result<Installed> {
    let kubernetes_version = cluster.server_version().await?;
    let selector = Some(discovery.control_plane.selector.as_str());
    let deployments = cluster
        .list("apps/v1", "Deployment", Some(namespace), selector)
        .await?;
    let pods = cluster.list("v1", "Pod", Some(namespace), selector).await?;
    let control_planes = control_planes(discovery, &deployments, &pods);
    let method = if release.is_some() {
        InstallMethod::Meshup
    } else if control_planes.is_empty() {
        InstallMethod::None
    } else {
        detect_method(cluster, discovery, namespace, &deployments).await?
    };
    Ok(Installed {
        kubernetes_version,
        namespace: namespace.to_string(),
        control_planes,
        method,
        release,
        history_unreadable: false,
    })
}

async fn detect_method(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
    deployments: &[Value],
) -> anyhow::Result<InstallMethod> {
    if let Some(release) = deployments.iter().find_map(helm_release) {
        return Ok(InstallMethod::Helm { release });
    }
    let istioctl = crate::installed::istioctl::Istioctl;
    Ok(istioctl
        .detect(cluster, discovery, namespace, deployments)
        .await?
        .unwrap_or(InstallMethod::Unknown))
}

/// The Helm release a control-plane Deployment belongs to, if Helm installed it (its
/// labels or annotations say so; without a release name, the Deployment's name).
fn helm_release(d: &Value) -> Option<String> {
    let meta = &d["metadata"];
    let release = meta["annotations"]["meta.helm.sh/release-name"].as_str();
    if meta["labels"]["app.kubernetes.io/managed-by"] != "Helm" && release.is_none() {
        return None;
    }
    Some(
        release
            .or(meta["name"].as_str())
            .unwrap_or_default()
            .to_string(),
    )
}
