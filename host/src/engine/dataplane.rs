//! The data plane: which workloads run which sidecar proxy version, and rolling
//! restarts that re-inject them (what `kubectl rollout restart` does).
//!
//! Pods are read page by page and folded into per-workload counts as they arrive, so
//! memory stays flat however many pods the cluster has.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::base::version;
use crate::cluster::client::Cluster;
use crate::cluster::kube::Kube;
use crate::installed::state::{container_image, image_version};
use crate::release::discovery::Discovery;

/// One workload's proxies.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Workload {
    pub namespace: String,
    /// `deployment/reviews`, `daemonset/log-agent` or `pod/debug` for bare pods.
    pub workload: String,
    /// Proxy version → number of pods.
    pub versions: BTreeMap<String, usize>,
}

impl Workload {
    pub fn kind(&self) -> &str {
        self.workload.split('/').next().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.workload.split('/').nth(1).unwrap_or("")
    }
    /// Whether any pod of the workload runs a proxy other than `version`.
    pub fn outdated(&self, version: &str) -> bool {
        self.versions.keys().any(|v| v != version)
    }
    /// The command that re-injects it.
    pub fn restart_command(&self) -> String {
        format!(
            "kubectl rollout restart {} -n {}",
            self.workload, self.namespace
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub control_plane_version: Option<String>,
    pub pods: usize,
    pub workloads: Vec<Workload>,
}

impl Report {
    pub fn outdated(&self) -> Vec<&Workload> {
        match &self.control_plane_version {
            Some(v) => self.workloads.iter().filter(|w| w.outdated(v)).collect(),
            None => vec![],
        }
    }

    /// Proxy versions by namespace: namespace → version → pods.
    pub fn by_namespace(&self) -> BTreeMap<&str, BTreeMap<&str, usize>> {
        let mut out: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for w in &self.workloads {
            for (v, n) in &w.versions {
                *out.entry(w.namespace.as_str())
                    .or_default()
                    .entry(v.as_str())
                    .or_default() += n;
            }
        }
        out
    }
}

/// The workload a pod belongs to, from its owner references.
pub fn owner(pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let Some(o) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|a| a.first())
    else {
        return format!("pod/{name}");
    };
    let owner_name = o["name"].as_str().unwrap_or_default();
    match o["kind"].as_str().unwrap_or_default() {
        // ReplicaSet `reviews-7c9d8f` belongs to Deployment `reviews`: strip the template hash.
        "ReplicaSet" => match (
            owner_name.rsplit_once('-'),
            pod["metadata"]["labels"]["pod-template-hash"].as_str(),
        ) {
            (Some((dep, hash)), Some(h)) if hash == h => format!("deployment/{dep}"),
            _ => format!("replicaset/{owner_name}"),
        },
        kind => format!("{}/{owner_name}", kind.to_lowercase()),
    }
}

/// Fold one pod into the per-workload tally; pods without a `proxy` sidecar container
/// are not counted.
fn tally(
    acc: &mut BTreeMap<(String, String), BTreeMap<String, usize>>,
    pod: &Value,
    proxy: &str,
) -> bool {
    let Some(v) = container_image(&pod["spec"], proxy).and_then(image_version) else {
        return false;
    };
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    *acc.entry((ns, owner(pod)))
        .or_default()
        .entry(v)
        .or_default() += 1;
    true
}

/// Read every pod (paginated) and report proxy versions per workload (the sidecar
/// `discovery` names), skipping `skip_namespace`.
pub async fn report(
    cluster: &dyn Kube,
    discovery: &Discovery,
    control_plane_version: Option<String>,
    skip_namespace: &str,
) -> anyhow::Result<Report> {
    let mut acc = BTreeMap::new();
    let mut pods = 0;
    let mut next = None;
    loop {
        let page = cluster
            .list_page("v1", "Pod", None, None, next)
            .await
            .context("listing pods")?;
        for p in &page.items {
            if p["metadata"]["namespace"].as_str() == Some(skip_namespace) {
                continue;
            }
            pods += usize::from(tally(&mut acc, p, &discovery.proxy_container));
        }
        match page.next {
            Some(c) => next = Some(c),
            None => break,
        }
    }
    let workloads = acc
        .into_iter()
        .map(|((namespace, workload), versions)| Workload {
            namespace,
            workload,
            versions,
        })
        .collect();
    Ok(Report {
        control_plane_version,
        pods,
        workloads,
    })
}

/// Options for `meshup dataplane restart`.
#[derive(Debug, Clone)]
pub struct RestartOptions {
    pub namespaces: Vec<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RestartReport {
    pub restarted: Vec<String>,
    pub failed: Vec<String>,
    pub not_restarted: Vec<String>,
}

/// Rolling-restart the outdated Deployments, namespace by namespace, at most `concurrency`
/// at once, waiting for each rollout; stop at the first failure.
pub async fn restart(
    cluster: &Cluster,
    report: &Report,
    opts: &RestartOptions,
    mut on_done: impl FnMut(&str, Result<Duration, String>),
) -> anyhow::Result<RestartReport> {
    let mut targets: Vec<&Workload> = report
        .outdated()
        .into_iter()
        .filter(|w| opts.namespaces.is_empty() || opts.namespaces.contains(&w.namespace))
        .collect();
    targets.sort_by(|a, b| (&a.namespace, &a.workload).cmp(&(&b.namespace, &b.workload)));
    let mut out = RestartReport::default();
    let mut namespaces: Vec<&str> = targets.iter().map(|w| w.namespace.as_str()).collect();
    namespaces.dedup();
    for ns in namespaces {
        let batch: Vec<&&Workload> = targets.iter().filter(|w| w.namespace == ns).collect();
        if !out.failed.is_empty() || opts.dry_run {
            out.not_restarted.extend(
                batch
                    .iter()
                    .map(|w| format!("{}/{}", w.namespace, w.workload)),
            );
            continue;
        }
        let results: Vec<(String, Result<Duration, String>)> = futures::stream::iter(batch)
            .map(|w| async move {
                let id = format!("{}/{}", w.namespace, w.workload);
                (
                    id,
                    restart_one(cluster, w, opts.timeout)
                        .await
                        .map_err(|e| format!("{e:#}")),
                )
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for (id, r) in results {
            on_done(&id, r.clone());
            match r {
                Ok(_) => out.restarted.push(id),
                Err(e) => out.failed.push(format!("{id}: {e}")),
            }
        }
    }
    Ok(out)
}

async fn restart_one(
    cluster: &Cluster,
    w: &Workload,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let kind = match w.kind() {
        "deployment" => "Deployment",
        "daemonset" => "DaemonSet",
        other => anyhow::bail!(
            "{other} workloads cannot be restarted in place; delete the pods to re-inject them"
        ),
    };
    let api = cluster.api("apps/v1", kind, Some(&w.namespace)).await?;
    // The same annotation `kubectl rollout restart` sets, as a strategic-merge patch.
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": crate::installed::history::now()}}}}});
    api.patch(w.name(), &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .with_context(|| format!("restarting {}", w.workload))?;
    let deadline = Instant::now() + timeout;
    crate::cluster::wait::until_rolled_out(
        cluster,
        kind,
        &w.namespace,
        w.name(),
        deadline,
        |_, _, _| {},
    )
    .await
    .map_err(anyhow::Error::from)
}

/// Sort versions newest first for display.
pub fn sorted_versions<'a>(vs: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = vs.collect();
    v.sort_by(|a, b| version::cmp(b, a));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, rs: &str, hash: &str, tag: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns, "labels": {"pod-template-hash": hash},
                "ownerReferences": [{"kind": "ReplicaSet", "name": rs}]},
               "spec": {"containers": [{"name": "app", "image": "shop:1"},
                                       {"name": "istio-proxy", "image": format!("docker.io/istio/proxyv2:{tag}")}]}})
    }

    #[test]
    fn pods_fold_into_workloads() {
        let mut acc = BTreeMap::new();
        let tally = |acc: &mut _, pod: &Value| tally(acc, pod, "istio-proxy");
        assert!(tally(
            &mut acc,
            &pod("shop", "cart-5d9f-a", "cart-5d9f", "5d9f", "1.7.8")
        ));
        assert!(tally(
            &mut acc,
            &pod("shop", "cart-5d9f-b", "cart-5d9f", "5d9f", "1.8.6")
        ));
        assert!(!tally(
            &mut acc,
            &json!({"metadata": {"name": "x", "namespace": "shop"}, "spec": {"containers": []}})
        ));
        let w = Workload {
            namespace: "shop".into(),
            workload: "deployment/cart".into(),
            versions: acc[&("shop".to_string(), "deployment/cart".to_string())].clone(),
        };
        assert_eq!(w.versions.len(), 2);
        assert!(w.outdated("1.8.6"));
        assert_eq!(
            w.restart_command(),
            "kubectl rollout restart deployment/cart -n shop"
        );
    }
}
