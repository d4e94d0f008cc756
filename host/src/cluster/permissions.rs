//! Does the caller have every permission the plan needs? Asked of the API server with
//! `SelfSubjectAccessReview`, before anything is applied, so a run never stops
//! half-way on a 403. And what a reader was refused: a precheck run by a user who may read
//! only some kinds (the built-in `view` role reads no Secrets) reads through a `Reader`,
//! which notes each refusal and skips what may be skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::ResourceAttributes;
use kube::api::ApiResource;
use serde_json::Value;

use crate::base::object::ObjectKey;
use crate::cluster::client::Result;
use crate::cluster::kube::{Kube, OnProgress, Page};
use crate::cluster::wait::WaitError;

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

/// The order verbs are listed in, the way a Role's rules read.
const VERB_ORDER: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Permissions grouped as a person grants them, one line per resource and namespace:
/// `get, list secrets in istio-system (meshup's release history)`. `why` says what each
/// was needed for (several reasons are joined).
pub fn grouped<'a>(items: impl IntoIterator<Item = (&'a Missing, Option<&'a str>)>) -> Vec<String> {
    /// One resource in one namespace: its verbs (by `VERB_ORDER`, then any other) and reasons.
    #[derive(Default)]
    struct Group {
        verbs: BTreeSet<usize>,
        other: Vec<String>,
        whys: Vec<String>,
    }
    let mut by: BTreeMap<(Option<String>, String), Group> = BTreeMap::new();
    for (m, why) in items {
        let g = by
            .entry((m.namespace.clone(), m.resource.clone()))
            .or_default();
        match VERB_ORDER.iter().position(|v| *v == m.verb) {
            Some(i) => {
                g.verbs.insert(i);
            }
            None if !g.other.contains(&m.verb) => g.other.push(m.verb.clone()),
            None => {}
        }
        if let Some(w) = why
            && !g.whys.iter().any(|x| x == w)
        {
            g.whys.push(w.to_string());
        }
    }
    by.into_iter()
        .map(|((namespace, resource), g)| {
            let verbs: Vec<String> = g
                .verbs
                .into_iter()
                .map(|i| VERB_ORDER[i].to_string())
                .chain(g.other)
                .collect();
            let verbs = verbs.join(", ");
            let whys = g.whys.join("; ");
            match (namespace, whys.is_empty()) {
                (Some(ns), true) => format!("{verbs} {resource} in {ns}"),
                (Some(ns), false) => format!("{verbs} {resource} in {ns} ({whys})"),
                (None, true) => format!("{verbs} {resource} (cluster-wide)"),
                (None, false) => format!("{verbs} {resource} (cluster-wide; {whys})"),
            }
        })
        .collect()
}

/// A request the API server refused (403), and what the run read it for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Refused {
    pub missing: Missing,
    pub why: String,
}

/// The refusals a `Reader` noted (shared: the reader is handed down as `&dyn Kube`).
#[derive(Debug, Clone, Default)]
pub struct Refusals(Arc<Mutex<BTreeSet<Refused>>>);

impl Refusals {
    pub fn note(&self, verb: &str, resource: &ApiResource, namespace: Option<&str>, why: &str) {
        let resource = if resource.group.is_empty() {
            resource.plural.clone()
        } else {
            format!("{}.{}", resource.plural, resource.group)
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Refused {
                missing: Missing {
                    verb: verb.into(),
                    resource,
                    namespace: namespace.map(str::to_string),
                },
                why: why.into(),
            });
    }

    pub fn insert(&self, r: Refused) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(r);
    }

    pub fn all(&self) -> Vec<Refused> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// Cluster access that reads what it may: a refused list reads as no objects, a refused
/// get stays an error (the caller knows what an unreadable object means to it); both are
/// noted, with what the run was reading at the time (`reading`). Writes pass through.
pub struct Reader {
    inner: Arc<dyn Kube>,
    pub refusals: Refusals,
    reading: Mutex<&'static str>,
}

impl Reader {
    pub fn new(inner: Arc<dyn Kube>) -> Reader {
        Reader {
            inner,
            refusals: Refusals::default(),
            reading: Mutex::new("reading the cluster"),
        }
    }

    /// What the reads from now on are for (`what is installed`, `the plan's live objects`).
    pub fn reading(&self, what: &'static str) {
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }

    async fn note(&self, verb: &str, api_version: &str, kind: &str, namespace: Option<&str>) {
        let ar = match self.inner.resource(api_version, kind).await {
            Ok(ar) => ar,
            Err(_) => {
                let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
                ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind))
            }
        };
        let why = *self.reading.lock().unwrap_or_else(|e| e.into_inner());
        self.refusals.note(verb, &ar, namespace, why);
    }
}

#[async_trait]
impl Kube for Reader {
    async fn server_version(&self) -> Result<String> {
        self.inner.server_version().await
    }
    async fn resource(&self, api_version: &str, kind: &str) -> Result<ApiResource> {
        self.inner.resource(api_version, kind).await
    }
    async fn serves(&self, api_version: &str, resource: &str) -> Result<bool> {
        self.inner.serves(api_version, resource).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>> {
        let r = self.inner.get(key).await;
        if let Err(e) = &r
            && e.is_forbidden()
        {
            self.note("get", &key.api_version, &key.kind, key.namespace.as_deref())
                .await;
        }
        r
    }
    async fn list_page(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
        page: Option<String>,
    ) -> Result<Page> {
        match self
            .inner
            .list_page(api_version, kind, namespace, selector, page)
            .await
        {
            Err(e) if e.is_forbidden() => {
                self.note("list", api_version, kind, namespace).await;
                Ok(Page {
                    items: vec![],
                    next: None,
                })
            }
            r => r,
        }
    }
    async fn apply(&self, obj: &Value, dry_run: bool, manager: &str) -> Result<Value> {
        self.inner.apply(obj, dry_run, manager).await
    }
    async fn create(&self, obj: &Value) -> Result<Option<Value>> {
        self.inner.create(obj).await
    }
    async fn replace(&self, obj: &Value) -> Result<Value> {
        self.inner.replace(obj).await
    }
    async fn replace_or_create(&self, obj: &Value, manager: &str) -> Result<Value> {
        self.inner.replace_or_create(obj, manager).await
    }
    async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<()> {
        self.inner.merge_patch(key, patch).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn allowed(&self, attributes: ResourceAttributes) -> Result<bool> {
        self.inner.allowed(attributes).await
    }
    async fn wait_rolled_out(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        deadline: Instant,
        progress: OnProgress<'_>,
    ) -> std::result::Result<Duration, WaitError> {
        self.inner
            .wait_rolled_out(kind, namespace, name, deadline, progress)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(verb: &str, resource: &str, ns: Option<&str>) -> Missing {
        Missing {
            verb: verb.into(),
            resource: resource.into(),
            namespace: ns.map(str::to_string),
        }
    }

    #[test]
    fn grouped_by_resource_and_namespace_in_role_order() {
        let items = [
            m("list", "secrets", Some("istio-system")),
            m("get", "secrets", Some("istio-system")),
            m("patch", "deployments.apps", Some("istio-system")),
            m("create", "deployments.apps", Some("istio-system")),
            m("get", "clusterroles.rbac.authorization.k8s.io", None),
        ];
        let whys = [
            Some("meshup's release history"),
            Some("the policies' reads"),
            None,
            None,
            None,
        ];
        assert_eq!(
            grouped(items.iter().zip(whys)),
            vec![
                "get clusterroles.rbac.authorization.k8s.io (cluster-wide)",
                "create, patch deployments.apps in istio-system",
                "get, list secrets in istio-system (meshup's release history; the policies' reads)",
            ]
        );
    }
}
