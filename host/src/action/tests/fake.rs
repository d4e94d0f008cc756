//! A cluster in memory that implements `Kube` and fails on demand (Helm's fake
//! `kube.Interface`): a given verb on a given object answers an API error, a workload on
//! a given image never becomes ready, a lease is whatever the test put there.
//!
//! Its "controller" is instant: a workload that is written is rolled out at once (status
//! complete, one ready pod per replica running the template's images), unless a stall
//! says otherwise.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::authorization::v1::ResourceAttributes;
use kube::api::{ApiResource, GroupVersionKind};
use kube::core::Status;
use serde_json::{Value, json};

use crate::base::object::ObjectKey;
use crate::cluster::client::{Error, Result, without_server_fields};
use crate::cluster::kube::{Kube, OnProgress, Page};
use crate::cluster::wait::{self, WaitError};

/// How a workload whose template runs a given image fails to roll out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stall {
    /// Its pods never become ready (the wait times out).
    NeverReady,
    /// The controller gives up: `ProgressDeadlineExceeded`.
    DeadlineExceeded,
}

/// Objects by (kind, namespace, name): apiVersions of one kind name the same object.
type Id = (String, Option<String>, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Id, Value>,
    version: u64,
    /// (verb, kind, name) that answer an API error.
    failures: Vec<(String, String, String)>,
    /// Image substring → how workloads running it stall.
    stalls: Vec<(String, Stall)>,
}

#[derive(Default)]
pub struct FakeCluster {
    state: Mutex<State>,
}

fn id(key: &ObjectKey) -> Id {
    (key.kind.clone(), key.namespace.clone(), key.name.clone())
}

fn api_error(code: u16, message: &str, doing: String) -> Error {
    Error::Api {
        doing,
        cause: kube::Error::Api(Box::new(Status::failure(message, "Fake").with_code(code))),
    }
}

impl FakeCluster {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `verb` (a `Kube` method name: apply, replace_or_create, delete, ...) on the object
    /// of `kind` named `name` answers a 500 from now on.
    pub fn fail(&self, verb: &str, kind: &str, name: &str) {
        self.lock()
            .failures
            .push((verb.into(), kind.into(), name.into()));
    }

    /// Workloads whose template runs an image containing `image` stall as `how`.
    pub fn stall(&self, image: &str, how: Stall) {
        self.lock().stalls.push((image.into(), how));
    }

    /// Put an object in place as it is (a lease someone else holds, a live object).
    pub fn insert(&self, obj: Value) {
        let mut st = self.lock();
        st.objects.insert(id(&ObjectKey::of(&obj)), obj);
    }

    /// Every object, as a diff or a restore compares it (server fields removed).
    pub fn contents(&self) -> BTreeMap<Id, Value> {
        self.lock()
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), without_server_fields(v)))
            .collect()
    }

    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let id = (
            kind.to_string(),
            namespace.map(str::to_string),
            name.to_string(),
        );
        self.lock().objects.get(&id).cloned()
    }

    /// The stored objects and the Endpoints of every Service (the endpoints controller's).
    fn visible(&self) -> BTreeMap<Id, Value> {
        let mut objects = self.lock().objects.clone();
        let endpoints: Vec<(Id, Value)> = objects
            .iter()
            .filter(|((kind, _, _), _)| kind == "Service")
            .map(|((_, ns, name), svc)| {
                let ready = objects.iter().filter(|((kind, pod_ns, _), pod)| {
                    kind == "Pod" && pod_ns == ns && serves(svc, pod) && crate::installed::state::pod_ready(pod)
                });
                let addresses: Vec<Value> = ready.map(|_| json!({"ip": "10.0.0.1"})).collect();
                let ep = json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns}, "subsets": [{"addresses": addresses}]});
                (("Endpoints".to_string(), ns.clone(), name.clone()), ep)
            })
            .collect();
        objects.extend(endpoints);
        objects
    }

    fn check(&self, verb: &str, key: &ObjectKey) -> Result<()> {
        let failing = self
            .lock()
            .failures
            .iter()
            .any(|(v, k, n)| v == verb && *k == key.kind && *n == key.name);
        if failing {
            return Err(api_error(500, "injected failure", format!("{verb} {key}")));
        }
        Ok(())
    }

    /// Store `obj` as the API server would: a new resourceVersion, the generation bumped
    /// when the spec changes; then let the instant controller act on it.
    fn store(&self, mut obj: Value, dry_run: bool) -> Value {
        let mut st = self.lock();
        let key = id(&ObjectKey::of(&obj));
        let live = st.objects.get(&key).cloned();
        let generation = match &live {
            Some(l) if l["spec"] == obj["spec"] => {
                l["metadata"]["generation"].as_u64().unwrap_or(1)
            }
            Some(l) => l["metadata"]["generation"].as_u64().unwrap_or(1) + 1,
            None => 1,
        };
        st.version += 1;
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(st.version.to_string());
        meta["generation"] = json!(generation);
        if let Some(s) = live
            .as_ref()
            .map(|l| l["status"].clone())
            .filter(|s| !s.is_null())
        {
            obj["status"] = s;
        }
        if dry_run {
            return obj;
        }
        let stall = rollout_stall(&st.stalls, &obj);
        st.objects.insert(key, obj.clone());
        if matches!(obj["kind"].as_str(), Some("Deployment" | "DaemonSet")) {
            roll_out(&mut st, &obj, stall);
        }
        st.objects
            .get(&id(&ObjectKey::of(&obj)))
            .cloned()
            .unwrap_or(obj)
    }
}

/// How a workload stalls, if its template runs a stalled image.
fn rollout_stall(stalls: &[(String, Stall)], workload: &Value) -> Option<Stall> {
    let images = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    stalls
        .iter()
        .find(|(image, _)| {
            images.iter().any(|c| {
                c["image"]
                    .as_str()
                    .is_some_and(|i| i.contains(image.as_str()))
            })
        })
        .map(|(_, how)| *how)
}

/// The instant controller: the workload's status and pods, as a finished rollout or a
/// stalled one (whose new pods never become ready).
fn roll_out(st: &mut State, workload: &Value, stall: Option<Stall>) {
    let key = ObjectKey::of(workload);
    let ns = key.namespace.clone().unwrap_or_else(|| "default".into());
    let desired = if workload["kind"] == "DaemonSet" {
        1
    } else {
        workload["spec"]["replicas"].as_u64().unwrap_or(1)
    };
    let ready = if stall.is_some() { 0 } else { desired };
    let generation = workload["metadata"]["generation"].clone();
    let status = match (workload["kind"].as_str(), stall) {
        (Some("DaemonSet"), _) => json!({"observedGeneration": generation,
            "desiredNumberScheduled": desired, "updatedNumberScheduled": desired,
            "numberAvailable": ready, "numberReady": ready}),
        (_, Some(Stall::DeadlineExceeded)) => json!({"observedGeneration": generation,
            "replicas": desired, "updatedReplicas": desired, "readyReplicas": 0, "availableReplicas": 0,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": format!("ReplicaSet \"{}\" has timed out progressing.", key.name)}]}),
        _ => json!({"observedGeneration": generation, "replicas": desired,
            "updatedReplicas": desired, "readyReplicas": ready, "availableReplicas": ready}),
    };
    if let Some(w) = st.objects.get_mut(&id(&key)) {
        w["status"] = status;
    }
    // The old pods go, the new ones come (not ready when stalled).
    let owner = format!("{}/{}", key.kind, key.name);
    st.objects.retain(|(kind, _, _), o| {
        !(kind == "Pod" && o["metadata"]["annotations"]["fake/owner"] == owner.as_str())
    });
    let template = &workload["spec"]["template"];
    for i in 0..desired {
        let name = format!("{}-{i}", key.name);
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": template["metadata"]["labels"],
                "annotations": {"fake/owner": owner}},
            "spec": template["spec"],
            "status": {"conditions": [{"type": "Ready", "status": if stall.is_some() { "False" } else { "True" }}]}});
        st.objects
            .insert(("Pod".into(), Some(ns.clone()), name), pod);
    }
}

/// A Service with a selector serves the pods carrying all of its labels.
fn serves(service: &Value, pod: &Value) -> bool {
    service["spec"]["selector"].as_object().is_some_and(|sel| {
        !sel.is_empty() && sel.iter().all(|(k, v)| &pod["metadata"]["labels"][k] == v)
    })
}

/// `a=b,c=d` matches objects carrying every pair among their labels.
fn selected(obj: &Value, selector: Option<&str>) -> bool {
    selector.is_none_or(|s| {
        s.split(',').filter(|p| !p.is_empty()).all(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            obj["metadata"]["labels"][k].as_str() == Some(v)
        })
    })
}

#[async_trait]
impl Kube for FakeCluster {
    async fn server_version(&self) -> Result<String> {
        // A version every bundle from 1.7 to 1.9 supports.
        Ok("v1.18.20".into())
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<ApiResource> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(
            group, version, kind,
        )))
    }

    async fn serves(&self, api_version: &str, resource: &str) -> Result<bool> {
        // What every current API server serves.
        Ok(api_version == "v1" && resource == "serviceaccounts/token")
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Value>> {
        self.check("get", key)?;
        Ok(self.visible().remove(&id(key)))
    }

    async fn list_page(
        &self,
        _api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
        _page: Option<String>,
    ) -> Result<Page> {
        let items = self
            .visible()
            .iter()
            .filter(|((k, ns, _), o)| {
                k == kind
                    && (namespace.is_none() || ns.as_deref() == namespace)
                    && selected(o, selector)
            })
            .map(|(_, o)| o.clone())
            .collect();
        Ok(Page { items, next: None })
    }

    async fn apply(&self, obj: &Value, dry_run: bool, _manager: &str) -> Result<Value> {
        let key = ObjectKey::of(obj);
        self.check(if dry_run { "dry-run" } else { "apply" }, &key)?;
        Ok(self.store(obj.clone(), dry_run))
    }

    async fn create(&self, obj: &Value) -> Result<Option<Value>> {
        let key = ObjectKey::of(obj);
        self.check("create", &key)?;
        if self.lock().objects.contains_key(&id(&key)) {
            return Ok(None);
        }
        Ok(Some(self.store(obj.clone(), false)))
    }

    async fn replace(&self, obj: &Value) -> Result<Value> {
        let key = ObjectKey::of(obj);
        self.check("replace", &key)?;
        let live = self.lock().objects.get(&id(&key)).cloned();
        let Some(live) = live else {
            return Err(api_error(404, "not found", format!("replacing {key}")));
        };
        if obj["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"] {
            return Err(api_error(409, "conflict", format!("replacing {key}")));
        }
        Ok(self.store(obj.clone(), false))
    }

    async fn replace_or_create(&self, obj: &Value, _manager: &str) -> Result<Value> {
        self.check("replace_or_create", &ObjectKey::of(obj))?;
        Ok(self.store(obj.clone(), false))
    }

    async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<()> {
        self.check("merge_patch", key)?;
        let mut st = self.lock();
        if let Some(o) = st.objects.get_mut(&id(key)) {
            json_patch_merge(o, patch);
        }
        Ok(())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.check("delete", key)?;
        self.lock().objects.remove(&id(key));
        Ok(())
    }

    async fn allowed(&self, _: ResourceAttributes) -> Result<bool> {
        Ok(true)
    }

    /// Nothing changes while waiting in memory: the rollout is done, failed, or never.
    async fn wait_rolled_out(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        _deadline: Instant,
        progress: OnProgress<'_>,
    ) -> std::result::Result<Duration, WaitError> {
        let obj = self
            .object(kind, Some(namespace), name)
            .unwrap_or(Value::Null);
        match wait::observe(kind, namespace, name, &obj, progress)? {
            None => Ok(Duration::ZERO),
            Some(last) => Err(WaitError::Timeout {
                kind: kind.into(),
                namespace: namespace.into(),
                name: name.into(),
                secs: 1,
                last,
            }),
        }
    }
}

/// RFC 7386 merge patch.
fn json_patch_merge(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in p {
        if v.is_null() {
            target.as_object_mut().map(|t| t.remove(k));
        } else {
            json_patch_merge(&mut target[k], v);
        }
    }
}
