//! What the actions need of a Kubernetes API server, as one small trait.
//!
//! `Kube` is everything the upgrade, restore and rollback paths do to a cluster: read,
//! list, apply (or dry-run), write back, delete, wait for a rollout, ask whether a verb is
//! allowed, and read the server version. `cluster::Cluster` implements it against a real
//! API server (the watch behind `wait_rolled_out` included); the action tests implement
//! it in memory, failing on demand (Helm's `kube.Interface` and its fake).
//!
//! Errors are `cluster::Error`, so callers branch on the same variants whichever
//! implementation answers.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, ApiResource, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::base::object::ObjectKey;
use crate::cluster::client::{self as cluster, Cluster, Error, Result};
use crate::cluster::wait::WaitError;

/// One page of a list, and the token of the next one (`None`: this was the last).
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
}

/// Called with (ready, desired, message) each time a watched workload changes.
pub type OnProgress<'a> = &'a mut (dyn FnMut(u64, u64, &str) + Send);

/// Cluster access as the actions use it.
#[async_trait]
pub trait Kube: Send + Sync {
    /// `GET /version`: the API server's git version.
    async fn server_version(&self) -> Result<String>;

    /// apiVersion + kind resolved to a resource (its plural names it in a permission
    /// review). `Error::NotServed` for a kind the server does not know.
    async fn resource(&self, api_version: &str, kind: &str) -> Result<ApiResource>;

    /// Whether the API server lists `resource` (a resource or subresource name, such as
    /// `serviceaccounts/token`) in `api_version`'s discovery document.
    async fn serves(&self, api_version: &str, resource: &str) -> Result<bool>;

    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>>;

    /// One page of a kind's objects, optionally in one namespace and by label selector.
    async fn list_page(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
        page: Option<String>,
    ) -> Result<Page>;

    /// Server-side apply as field manager `manager` (forced: the applier owns what it
    /// renders); `dry_run` stores nothing. `FIELD_MANAGER` is meshup's own; an object
    /// another installer keeps records of is applied under that installer's name, so its
    /// next run meets no conflict.
    async fn apply(&self, obj: &Value, dry_run: bool, manager: &str) -> Result<Value>;

    /// Create `obj`; `Ok(None)` when an object of that name already exists.
    async fn create(&self, obj: &Value) -> Result<Option<Value>>;

    /// Replace the whole object, guarded by the `resourceVersion` it carries (a conflict
    /// is an `Error::Api` with code 409).
    async fn replace(&self, obj: &Value) -> Result<Value>;

    /// Write `obj` back exactly as given, or create it if it is gone (a restore), as field
    /// manager `manager`.
    async fn replace_or_create(&self, obj: &Value, manager: &str) -> Result<Value>;

    /// A JSON merge patch (a lease renewal).
    async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<()>;

    /// Delete an object; one that is already gone is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Whether the caller may do what `attributes` says (a `SelfSubjectAccessReview`).
    async fn allowed(&self, attributes: ResourceAttributes) -> Result<bool>;

    /// Wait until a workload's rollout is done or failed, or `deadline` passes.
    async fn wait_rolled_out(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        deadline: Instant,
        progress: OnProgress<'_>,
    ) -> std::result::Result<Duration, WaitError>;

    /// Every object of a kind (all pages).
    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut page = None;
        loop {
            let p = self
                .list_page(api_version, kind, namespace, selector, page)
                .await?;
            out.extend(p.items);
            match p.next {
                Some(next) => page = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Like `get`, but an object of a kind the cluster does not serve (yet: its CRD may be
    /// part of the same plan) reads as absent.
    async fn get_if_served(&self, key: &ObjectKey) -> Result<Option<Value>> {
        match self.get(key).await {
            Err(Error::NotServed { .. }) => Ok(None),
            r => r,
        }
    }

    /// Like `list`, but a kind the cluster does not serve has no objects.
    async fn list_if_served(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        match self.list(api_version, kind, namespace, selector).await {
            Err(Error::NotServed { .. }) => Ok(vec![]),
            r => r,
        }
    }
}

#[async_trait]
impl Kube for Cluster {
    async fn server_version(&self) -> Result<String> {
        Cluster::server_version(self).await
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ApiResource> {
        Ok(Cluster::resource(self, api_version, kind).await?.0)
    }

    async fn serves(&self, api_version: &str, resource: &str) -> Result<bool> {
        Cluster::serves(self, api_version, resource).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>> {
        Cluster::get(self, key).await
    }

    async fn list_page(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
        page: Option<String>,
    ) -> Result<Page> {
        let api = self.api(api_version, kind, namespace).await?;
        let mut lp = ListParams::default().limit(500);
        if let Some(s) = selector {
            lp = lp.labels(s);
        }
        if let Some(c) = &page {
            lp = lp.continue_token(c);
        }
        let doing = || format!("listing {kind} ({api_version})");
        let list = api.list(&lp).await.map_err(Error::api(doing()))?;
        let mut items = Vec::with_capacity(list.items.len());
        for o in &list.items {
            let mut v = cluster::to_value(o).map_err(cluster::malformed(doing()))?;
            // A real API server leaves apiVersion and kind out of list items; put them
            // back so every object read names its type (what `ObjectKey::of` keys on).
            if let Some(m) = v.as_object_mut() {
                m.entry("apiVersion").or_insert_with(|| api_version.into());
                m.entry("kind").or_insert_with(|| kind.into());
            }
            items.push(v);
        }
        Ok(Page {
            items,
            next: list.metadata.continue_.filter(|c| !c.is_empty()),
        })
    }

    async fn apply(&self, obj: &Value, dry_run: bool, manager: &str) -> Result<Value> {
        Cluster::apply(self, obj, dry_run, manager).await
    }

    async fn create(&self, obj: &Value) -> Result<Option<Value>> {
        let (key, api, object) = self.dynamic(obj, "creating").await?;
        match api.create(&PostParams::default(), &object).await {
            Ok(o) => Ok(Some(
                cluster::to_value(&o).map_err(cluster::malformed(format!("creating {key}")))?,
            )),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(Error::api(format!("creating {key}"))(e)),
        }
    }

    async fn replace(&self, obj: &Value) -> Result<Value> {
        let (key, api, object) = self.dynamic(obj, "replacing").await?;
        let doing = || format!("replacing {key}");
        let out = api
            .replace(&key.name, &PostParams::default(), &object)
            .await
            .map_err(Error::api(doing()))?;
        cluster::to_value(&out).map_err(cluster::malformed(doing()))
    }

    async fn replace_or_create(&self, obj: &Value, manager: &str) -> Result<Value> {
        Cluster::replace_or_create(self, obj, manager).await
    }

    async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<()> {
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(Error::api(format!("patching {key}")))?;
        Ok(())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        Cluster::delete(self, key).await
    }

    async fn allowed(&self, attributes: ResourceAttributes) -> Result<bool> {
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client().clone());
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(attributes),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(Error::api(
                "asking the API server what we may do (SelfSubjectAccessReview)",
            ))?;
        Ok(answer.status.map(|s| s.allowed).unwrap_or(false))
    }

    async fn wait_rolled_out(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        deadline: Instant,
        progress: OnProgress<'_>,
    ) -> std::result::Result<Duration, WaitError> {
        crate::cluster::wait::until_rolled_out(self, kind, namespace, name, deadline, progress)
            .await
    }
}
