//! Does the caller have every permission the plan needs? Asked of the API server with
//! `SelfSubjectAccessReview`, before anything is applied, so a run never stops
//! half-way on a 403.

use std::collections::BTreeSet;

use k8s_openapi::api::authorization::v1::ResourceAttributes;

use crate::base::object::ObjectKey;
use crate::cluster::kube::Kube;

/// One permission that is missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Missing {
    pub verb: String,
    pub resource: String,
    pub namespace: Option<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} in {ns}", self.verb, self.resource),
            None => write!(f, "{} {} (cluster-wide)", self.verb, self.resource),
        }
    }
}

/// The (verb, group, resource, namespace) tuples a plan needs, checked concurrently.
pub async fn missing(
    cluster: &dyn Kube,
    applied: &[ObjectKey],
    pruned: &[ObjectKey],
) -> anyhow::Result<Vec<Missing>> {
    let mut asks = BTreeSet::new();
    for (keys, verbs) in [
        (applied, &["get", "create", "patch"][..]),
        (pruned, &["delete"][..]),
    ] {
        for k in keys {
            let ar = match cluster.resource(&k.api_version, &k.kind).await {
                Ok(ar) => ar,
                // A custom kind whose CRD this plan creates: not served yet; kube guesses
                // the plural the way the API server derives it.
                Err(crate::cluster::client::Error::NotServed { .. }) => {
                    let (group, version) = k.api_version.split_once('/').unwrap_or(("", ""));
                    let gvk = kube::api::GroupVersionKind::gvk(group, version, &k.kind);
                    kube::api::ApiResource::from_gvk(&gvk)
                }
                Err(e) => return Err(e.into()),
            };
            for v in verbs {
                asks.insert((
                    v.to_string(),
                    ar.group.clone(),
                    ar.plural.clone(),
                    k.namespace.clone(),
                ));
            }
        }
    }
    // Waiting and verification read workloads and pods; history writes Secrets.
    for ns in applied
        .iter()
        .filter_map(|k| k.namespace.clone())
        .collect::<BTreeSet<_>>()
    {
        for (verb, group, res) in [
            ("watch", "apps", "deployments"),
            ("list", "", "pods"),
            ("create", "", "secrets"),
            ("create", "coordination.k8s.io", "leases"),
        ] {
            asks.insert((verb.into(), group.into(), res.into(), Some(ns.clone())));
        }
    }
    let checks = asks
        .into_iter()
        .map(|(verb, group, resource, namespace)| async move {
            let allowed = cluster
                .allowed(ResourceAttributes {
                    verb: Some(verb.clone()),
                    group: Some(group.clone()),
                    resource: Some(resource.clone()),
                    namespace: namespace.clone(),
                    ..Default::default()
                })
                .await?;
            let resource = if group.is_empty() {
                resource
            } else {
                format!("{resource}.{group}")
            };
            anyhow::Ok((!allowed).then_some(Missing {
                verb,
                resource,
                namespace,
            }))
        });
    let mut out = Vec::new();
    for r in futures::future::join_all(checks).await {
        if let Some(m) = r? {
            out.push(m);
        }
    }
    out.sort();
    Ok(out)
}
