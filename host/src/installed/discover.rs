//! Reading what is installed from the cluster: the control planes and the versions their
//! pods run, the Kubernetes version, who installed it (each installer's `detect`), and the
//! Helm releases of the install in any namespace.

use serde_json::Value;

use crate::cluster::kube::Kube;
use crate::installed::helm::releases;
use crate::installed::history::Release;
use crate::installed::installer::Installer as _;
use crate::installed::state::{InstallMethod, Installed, control_planes};
use crate::release::discovery::Discovery;

/// Read the installed state of the mesh in `namespace`, found as `discovery` says, with the
/// Helm releases of the install in any namespace.
pub async fn read(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
    release: Option<Release>,
) -> anyhow::Result<Installed> {
    read_with(cluster, discovery, namespace, release, true).await
}

/// What runs, for the actions that need only the versions (`version`, `dataplane`): the
/// same as `read` but without Helm's release records, which it neither lists nor decodes.
pub async fn read_running(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
) -> anyhow::Result<Installed> {
    read_with(cluster, discovery, namespace, None, false).await
}

async fn read_with(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
    release: Option<Release>,
    with_helm: bool,
) -> anyhow::Result<Installed> {
    let kubernetes_version = cluster.server_version().await?;
    let selector = Some(discovery.control_plane.selector.as_str());
    let deployments = cluster
        .list("apps/v1", "Deployment", Some(namespace), selector)
        .await?;
    let pods = cluster.list("v1", "Pod", Some(namespace), selector).await?;
    let control_planes = control_planes(discovery, &deployments, &pods);
    let helm = if with_helm {
        releases::read(cluster, &releases::named_by(&deployments)).await?
    } else {
        releases::Found::default()
    };
    // Helm's annotations say the install is Helm's even after meshup ran: meshup keeps
    // Helm's records true, and Helm stays the installer the user may go back to.
    let method = match deployments.iter().find_map(helm_annotated) {
        Some(release) if !control_planes.is_empty() => InstallMethod::Helm { release },
        _ if release.is_some() => InstallMethod::Meshup,
        _ if control_planes.is_empty() => InstallMethod::None,
        _ => detect_method(cluster, discovery, namespace, &deployments, &helm).await?,
    };
    Ok(Installed {
        kubernetes_version,
        namespace: namespace.to_string(),
        control_planes,
        method,
        release,
        helm,
        history_unreadable: false,
    })
}

async fn detect_method(
    cluster: &dyn Kube,
    discovery: &Discovery,
    namespace: &str,
    deployments: &[Value],
    helm: &releases::Found,
) -> anyhow::Result<InstallMethod> {
    // (Helm's own annotations, which settle it, were looked at first, by `read_with`.)
    // Istio's charts label what they render `app.kubernetes.io/managed-by: Helm` whoever
    // renders them, so today's istioctl leaves that label too: its own labels come first.
    let istioctl = crate::installed::istioctl::Istioctl;
    if let Some(method) = istioctl
        .detect(cluster, discovery, namespace, deployments)
        .await?
    {
        return Ok(method);
    }
    if let Some(release) = deployments.iter().find_map(helm_labelled) {
        return Ok(InstallMethod::Helm { release });
    }
    // Helm's annotations gone (someone applied over them), its istiod release still there.
    Ok(match helm.control_plane(namespace) {
        Some(r) => InstallMethod::Helm {
            release: r.name.clone(),
        },
        None => InstallMethod::Unknown,
    })
}

/// The Helm release a control-plane Deployment belongs to by Helm's own annotation.
fn helm_annotated(d: &Value) -> Option<String> {
    d["metadata"]["annotations"]["meta.helm.sh/release-name"]
        .as_str()
        .map(String::from)
}

/// A Deployment only labelled `app.kubernetes.io/managed-by: Helm` (a Helm before 3.2 wrote
/// no annotations): its own name stands for the release.
fn helm_labelled(d: &Value) -> Option<String> {
    let meta = &d["metadata"];
    (meta["labels"]["app.kubernetes.io/managed-by"] == "Helm")
        .then(|| meta["name"].as_str().unwrap_or_default().to_string())
}
