//! API semantics on top of the store: create, update, patch, apply, delete.

use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultConfig, Faults, RequestLog};
use crate::registry::{Registry, ResourceType};
use crate::ssa;
use crate::store::{EventType, Obj, Store};
use crate::util::{ensure_map, get_str, new_uid, now_rfc3339, rand_suffix};
use serde_json::{Map, Value, json};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Cluster {
    pub store: Store,
    pub registry: Registry,
    pub faults: Mutex<Faults>,
    pub log: Mutex<RequestLog>,
    pub version: RwLock<String>,
    pub ready_delay: Duration,
    write: Mutex<()>,
    ip: AtomicU32,
    svc_ip: AtomicU32,
    /// Namespaces the controllers should look at again ("" = cluster-scoped).
    pub wake: mpsc::UnboundedSender<String>,
    /// Objects waiting for foreground deletion of their dependents.
    pub foreground: Mutex<HashSet<(String, String, String)>>,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub manager: String,
    pub force: bool,
    /// Seeding: keep status, no admission side effects (injection).
    pub seed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

/// A patch as the API received it: its type and its undecoded body.
#[derive(Debug, Clone, Copy)]
pub struct Patch<'a> {
    pub ty: PatchType,
    pub body: &'a [u8],
}

impl Patch<'_> {
    fn decode(&self) -> ApiResult<Value> {
        match self.ty {
            PatchType::Apply => serde_yaml::from_slice::<Value>(self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}"))),
            _ => serde_json::from_slice(self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}"))),
        }
    }
}

/// Server-side apply records who owns which field, so it needs a manager.
fn apply_manager_given(o: &WriteOpts) -> ApiResult<()> {
    if o.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    Ok(())
}

/// A resourceVersion the client sends is a precondition: the object must
/// not have changed since the client read it.
fn rv_precondition(rt: &ResourceType, name: &str, rv: Option<&str>, old: &Value) -> ApiResult<()> {
    match rv {
        Some(rv) if Some(rv) != get_str(old, &["metadata", "resourceVersion"]) => {
            Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ))
        }
        _ => Ok(()),
    }
}

/// The namespace of a new object is the request's; a different one in the
/// body is an error, and cluster-scoped objects have none.
fn place_in_namespace(meta: &mut Map<String, Value>, rt: &ResourceType, ns: &str) -> ApiResult<()> {
    if !rt.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str) {
        Some(bns) if !bns.is_empty() && bns != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            meta.insert("namespace".into(), json!(ns));
            Ok(())
        }
    }
}

/// A new object needs a name, or a generateName to make one from (access
/// reviews need neither).
fn name_or_generate(meta: &mut Map<String, Value>, rt: &ResourceType) -> ApiResult<()> {
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty())
    {
        return Ok(());
    }
    match meta.get("generateName").and_then(Value::as_str) {
        Some(g) if !g.is_empty() => {
            let n = format!("{g}{}", rand_suffix());
            meta.insert("name".into(), json!(n));
            Ok(())
        }
        _ if rt.virtual_create => Ok(()),
        _ => Err(ApiError::invalid(
            &rt.kind,
            "",
            "metadata.name: Required value: name or generateName is required",
        )),
    }
}

/// Metadata only the server sets on create (a seed may bring its own uid and
/// creation time).
fn server_metadata(meta: &mut Map<String, Value>, rt: &ResourceType, o: &WriteOpts) {
    let keep_uid = o.seed
        && meta
            .get("uid")
            .and_then(Value::as_str)
            .is_some_and(|u| !u.is_empty());
    if !keep_uid {
        meta.insert("uid".into(), json!(new_uid()));
    }
    if !(o.seed && meta.contains_key("creationTimestamp")) {
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    }
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("selfLink");
    if has_generation(rt) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
}

/// What an update may not change: the status (unless it is the status
/// subresource, which may change only that), and the object's identity.
fn keep_from_old(rt: &ResourceType, old: &Value, mut new: Value, sub: Option<&str>) -> Value {
    if sub == Some("status") {
        let status = new.get("status").cloned();
        new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                new.as_object_mut().expect("object").remove("status");
            }
        }
    } else if rt.status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                new.as_object_mut().expect("object").remove("status");
            }
        }
    }
    let m = new.as_object_mut().expect("object");
    m.insert("apiVersion".into(), json!(rt.api_version()));
    m.insert("kind".into(), json!(rt.kind));
    let meta = ensure_map(&mut new, &["metadata"]);
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ] {
        match old.pointer(&format!("/metadata/{k}")) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    meta.remove("resourceVersion");
    new
}

/// managedFields of a new object: the applier owns what it applied (and,
/// as with a real server, an applied status of a type with a status
/// subresource is dropped); a plain create is one Update entry.
fn track_create(
    rt: &ResourceType,
    mut v: Value,
    o: &WriteOpts,
    applied: Option<&Value>,
) -> ApiResult<Value> {
    match applied {
        Some(a) => {
            v = ssa::apply(&v, a, &o.manager, &rt.api_version(), true)
                .map_err(|_| ApiError::internal("apply on create"))?;
            if let Some(m) = v.as_object_mut()
                && rt.status
                && rt.plural != "pods"
                && rt.plural != "namespaces"
                && rt.plural != "customresourcedefinitions"
            {
                m.remove("status");
            }
            admission::default(rt, &mut v);
        }
        None if !o.seed => ssa::track_update(None, &mut v, &o.manager, &rt.api_version(), None),
        None => {}
    }
    Ok(v)
}

/// DeleteOptions preconditions: the uid and resourceVersion the client
/// names must be the object's.
fn delete_preconditions(rt: &ResourceType, name: &str, d: &DeleteOpts, old: &Obj) -> ApiResult<()> {
    if let Some(uid) = &d.uid
        && uid != old.uid()
    {
        return Err(ApiError::conflict(
            &rt.group,
            &rt.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                old.uid()
            ),
        ));
    }
    rv_precondition(rt, name, d.resource_version.as_deref(), &old.value)
}

/// A name in the body must be the one in the URL.
fn name_matches_url(body: &Value, name: &str) -> ApiResult<()> {
    if let Some(bn) = body.pointer("/metadata/name").and_then(Value::as_str)
        && bn != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({bn}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Propagation,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return true;
    };
    let skip = |k: &String| matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind");
    let ok = o.iter().filter(|(k, _)| !skip(k)).count();
    let nk = n.iter().filter(|(k, _)| !skip(k)).count();
    ok != nk
        || o.iter()
            .filter(|(k, _)| !skip(k))
            .any(|(k, v)| n.get(k) != Some(v))
}

fn has_generation(rt: &ResourceType) -> bool {
    rt.status || rt.custom || rt.plural == "customresourcedefinitions"
}

fn finalizers_empty(v: &Value) -> bool {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty())
}

impl Cluster {
    pub fn new(
        registry: Registry,
        faults: FaultConfig,
        version: String,
        ready_delay: Duration,
        wake: mpsc::UnboundedSender<String>,
        watch_history: usize,
    ) -> Self {
        Cluster {
            store: Store::new(watch_history.max(1)),
            registry,
            faults: Mutex::new(Faults::new(faults)),
            log: Mutex::new(RequestLog {
                entries: VecDeque::new(),
                cap: 100_000,
            }),
            version: RwLock::new(version),
            ready_delay,
            write: Mutex::new(()),
            ip: AtomicU32::new(1),
            svc_ip: AtomicU32::new(10),
            wake,
            foreground: Mutex::new(HashSet::new()),
        }
    }

    pub fn next_pod_ip(&self) -> String {
        let n = self.ip.fetch_add(1, Ordering::Relaxed);
        format!("10.244.{}.{}", (n >> 8) & 0xff, n & 0xff)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn wake_ns(&self, ns: &str) {
        let _ = self.wake.send(ns.to_string());
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Arc<Obj>> {
        let ns = if rt.namespaced { ns } else { "" };
        self.store
            .get(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Checks and normalises a new object's identity.
    fn prepare_new(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut body: Value,
        o: &WriteOpts,
    ) -> ApiResult<Value> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        self.check_type(rt, &body)?;
        let m = body.as_object_mut().expect("object");
        m.insert("apiVersion".into(), json!(rt.api_version()));
        m.insert("kind".into(), json!(rt.kind));
        let meta = ensure_map(&mut body, &["metadata"]);
        place_in_namespace(meta, rt, ns)?;
        name_or_generate(meta, rt)?;
        server_metadata(meta, rt, o);
        if rt.status && !o.seed && rt.plural != "namespaces" {
            body.as_object_mut().expect("object").remove("status");
        }
        admission::default(rt, &mut body);
        admission::validate(rt, &body, None)?;
        Ok(body)
    }

    fn check_type(&self, rt: &ResourceType, body: &Value) -> ApiResult<()> {
        if let Some(k) = body.get("kind").and_then(Value::as_str)
            && !k.is_empty()
            && k != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({k}) does not match the kind of the resource ({})",
                rt.kind
            )));
        }
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str) {
            let (g, _) = crate::registry::split_api_version(av);
            if !av.is_empty() && g != rt.group {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    rt.api_version()
                )));
            }
        }
        Ok(())
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str) -> ApiResult<Option<Arc<Obj>>> {
        if !rt.namespaced {
            return Ok(None);
        }
        let nso = self
            .store
            .get("/namespaces", "", ns)
            .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
        if nso.value.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.plural, ""
                ),
            ));
        }
        Ok(Some(nso))
    }

    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        body: Value,
        o: &WriteOpts,
    ) -> ApiResult<Value> {
        if rt.virtual_create {
            return self.access_review(body);
        }
        let _g = self.lock();
        self.create_locked(rt, ns, body, o, None)
    }

    fn create_locked(
        &self,
        rt: &ResourceType,
        ns: &str,
        body: Value,
        o: &WriteOpts,
        applied: Option<&Value>,
    ) -> ApiResult<Value> {
        let ns = if rt.namespaced { ns } else { "" };
        let mut v = self.prepare_new(rt, ns, body, o)?;
        let name = get_str(&v, &["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        if self.store.get(&rt.key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let nso = self.check_namespace(rt, ns)?;
        self.on_create(rt, nso.as_deref(), &mut v, o);
        if !o.seed || v.pointer("/metadata/managedFields").is_none() {
            v = track_create(rt, v, o, applied)?;
        }
        if o.dry_run {
            return Ok(v);
        }
        let obj = self.store.put(&rt.key(), v, EventType::Added);
        if rt.plural == "customresourcedefinitions" {
            self.register_crd(&obj.value);
        }
        Ok(obj.full())
    }

    /// What the cluster adds to a new object of some kinds: a pod's
    /// sidecar and pending status, a Service's cluster IP, a CRD's status.
    fn on_create(&self, rt: &ResourceType, nso: Option<&Obj>, v: &mut Value, o: &WriteOpts) {
        if rt.plural == "pods" && rt.group.is_empty() && !o.seed {
            admission::inject_sidecar(&self.store, nso.map(|n| &n.value), v);
            let ip = self.next_pod_ip();
            let st = admission::pod_status(v, &ip, false, false);
            v["status"] = st;
        }
        if rt.plural == "services" && rt.group.is_empty() {
            let spec = ensure_map(v, &["spec"]);
            if !spec.contains_key("clusterIP") {
                let n = self.svc_ip.fetch_add(1, Ordering::Relaxed);
                let ip = format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff);
                spec.insert("clusterIP".into(), json!(ip));
                spec.insert("clusterIPs".into(), json!([ip]));
            }
        }
        if rt.plural == "customresourcedefinitions" {
            admission::crd_status(v);
        }
    }

    fn register_crd(&self, crd: &Value) {
        if let Ok(types) = crate::registry::types_from_crd(crd) {
            let name = get_str(crd, &["metadata", "name"]).unwrap_or_default();
            self.registry.set_custom(name, types);
        }
    }

    /// Final identity/status/generation handling of an update; then stores it.
    fn finish_update(
        &self,
        rt: &ResourceType,
        old: &Value,
        mut new: Value,
        sub: Option<&str>,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Value> {
        if !new.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        self.check_type(rt, &new)?;
        new = keep_from_old(rt, old, new, sub);
        admission::default(rt, &mut new);
        admission::validate(rt, &new, Some(old))?;
        if rt.plural == "customresourcedefinitions" {
            admission::crd_status(&mut new);
        }
        if has_generation(rt) && spec_changed(old, &new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            ensure_map(&mut new, &["metadata"]).insert("generation".into(), json!(g + 1));
        }
        if track {
            ssa::track_update(Some(old), &mut new, &o.manager, &rt.api_version(), sub);
        }
        if o.dry_run {
            if let Some(rv) = old.pointer("/metadata/resourceVersion") {
                ensure_map(&mut new, &["metadata"]).insert("resourceVersion".into(), rv.clone());
            }
            return Ok(new);
        }
        Ok(self.commit(rt, new).full())
    }

    fn commit(&self, rt: &ResourceType, new: Value) -> Arc<Obj> {
        let key = rt.key();
        if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty(&new) {
            let ns = get_str(&new, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_string();
            let name = get_str(&new, &["metadata", "name"])
                .unwrap_or_default()
                .to_string();
            let stored = self.store.put(&key, new, EventType::Modified);
            return self.store.remove(&key, &ns, &name).unwrap_or(stored);
        }
        let obj = self.store.put(&key, new, EventType::Modified);
        if rt.plural == "customresourcedefinitions" {
            self.register_crd(&obj.value);
        }
        obj
    }

    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        o: &WriteOpts,
        sub: Option<&str>,
    ) -> ApiResult<Value> {
        let _g = self.lock();
        let old = self.get(rt, ns, name)?;
        name_matches_url(&body, name)?;
        let rv = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty());
        rv_precondition(rt, name, rv, &old.value)?;
        self.finish_update(rt, &old.full(), body, sub, o, true)
    }

    /// Patches an object (`sub`: the status subresource); server-side apply
    /// creates it when missing. Returns the object and whether it was created.
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        p: Patch<'_>,
        o: &WriteOpts,
        sub: Option<&str>,
    ) -> ApiResult<(Value, bool)> {
        let patch = p.decode()?;
        let _g = self.lock();
        let ns = if rt.namespaced { ns } else { "" };
        let Some(old) = self.store.get(&rt.key(), ns, name) else {
            if p.ty == PatchType::Apply {
                let v = self.create_by_apply(rt, ns, name, &patch, o)?;
                return Ok((v, true));
            }
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        let old_full = old.full();
        let new = self.patched(rt, name, &old_full, p.ty, &patch, o)?;
        if p.ty != PatchType::Apply {
            let rv = new
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str);
            rv_precondition(rt, name, rv, &old.value)?;
        }
        let v = self.finish_update(rt, &old_full, new, sub, o, p.ty != PatchType::Apply)?;
        Ok((v, false))
    }

    /// Server-side apply of an object that does not exist yet creates it.
    fn create_by_apply(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        patch: &Value,
        o: &WriteOpts,
    ) -> ApiResult<Value> {
        apply_manager_given(o)?;
        name_matches_url(patch, name)?;
        let mut body = patch.clone();
        ensure_map(&mut body, &["metadata"]).insert("name".into(), json!(name));
        self.create_locked(rt, ns, body, o, Some(patch))
    }

    /// The existing object with the patch applied.
    fn patched(
        &self,
        rt: &ResourceType,
        name: &str,
        old_full: &Value,
        ty: PatchType,
        patch: &Value,
        o: &WriteOpts,
    ) -> ApiResult<Value> {
        let mut new = old_full.clone();
        match ty {
            PatchType::Merge => crate::patch::merge_patch(&mut new, patch),
            PatchType::Strategic => crate::patch::strategic_merge(&mut new, patch),
            PatchType::Json => crate::patch::json_patch(&mut new, patch).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?,
            PatchType::Apply => {
                apply_manager_given(o)?;
                if !patch.is_object() {
                    return Err(ApiError::bad_request("apply patch must be an object"));
                }
                self.check_type(rt, patch)?;
                name_matches_url(patch, name)?;
                new = ssa::apply(old_full, patch, &o.manager, &rt.api_version(), o.force)
                    .map_err(|conflicts| apply_conflict_error(rt, name, &conflicts))?;
            }
        }
        Ok(new)
    }

    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        d: &DeleteOpts,
    ) -> ApiResult<Value> {
        let _g = self.lock();
        self.delete_locked(rt, ns, name, d)
    }

    fn delete_locked(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        d: &DeleteOpts,
    ) -> ApiResult<Value> {
        let ns = if rt.namespaced { ns } else { "" };
        let old = self.get(rt, ns, name)?;
        delete_preconditions(rt, name, d, &old)?;
        if d.dry_run {
            return Ok(old.full());
        }
        if rt.plural == "namespaces" && rt.group.is_empty() {
            return Ok(self.start_namespace_termination(rt, name, &old));
        }
        if rt.plural == "customresourcedefinitions" {
            return self.delete_crd(rt, name);
        }
        if d.propagation == Propagation::Orphan {
            self.orphan_dependents(old.uid(), ns);
        }
        let mut v = old.full();
        if d.propagation == Propagation::Foreground {
            self.add_foreground_finalizer(rt, ns, name, &mut v);
        }
        if !finalizers_empty(&v) {
            let already = old.value.pointer("/metadata/deletionTimestamp").is_some();
            return Ok(self.mark_deleting(rt, ns, v, already));
        }
        let obj = self
            .store
            .remove(&rt.key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        Ok(obj.full())
    }

    /// A namespace is not removed at once: it turns Terminating, and the
    /// namespace controller removes its contents, then it.
    fn start_namespace_termination(&self, rt: &ResourceType, name: &str, old: &Obj) -> Value {
        if old.value.pointer("/metadata/deletionTimestamp").is_some() {
            return old.full();
        }
        let mut v = old.full();
        ensure_map(&mut v, &["metadata"]).insert("deletionTimestamp".into(), json!(now_rfc3339()));
        ensure_map(&mut v, &["status"]).insert("phase".into(), json!("Terminating"));
        let obj = self.store.put(&rt.key(), v, EventType::Modified);
        self.wake_ns(name);
        obj.full()
    }

    /// Deleting a CRD stops serving its type and drops its objects.
    fn delete_crd(&self, rt: &ResourceType, name: &str) -> ApiResult<Value> {
        let obj = self
            .store
            .remove(&rt.key(), "", name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Ok(types) = crate::registry::types_from_crd(&obj.value)
            && let Some(t) = types.first()
        {
            self.store.drop_table(&t.key());
        }
        self.registry.remove_custom(name);
        Ok(obj.full())
    }

    /// Foreground deletion: the object stays (with a finalizer) until the
    /// garbage collector has removed its dependents.
    fn add_foreground_finalizer(&self, rt: &ResourceType, ns: &str, name: &str, v: &mut Value) {
        let meta = ensure_map(v, &["metadata"]);
        let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = fins.as_array_mut()
            && !a.iter().any(|f| f == "foregroundDeletion")
        {
            a.push(json!("foregroundDeletion"));
        }
        self.foreground
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((rt.key(), ns.to_string(), name.to_string()));
    }

    /// An object with finalizers only gets a deletionTimestamp (once).
    fn mark_deleting(&self, rt: &ResourceType, ns: &str, mut v: Value, already: bool) -> Value {
        if !already {
            let meta = ensure_map(&mut v, &["metadata"]);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        let obj = self.store.put(&rt.key(), v, EventType::Modified);
        self.wake_ns(ns);
        obj.full()
    }

    /// Namespaced type keys (deduplicated).
    pub fn namespaced_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .registry
            .all()
            .iter()
            .filter(|t| t.namespaced && !t.virtual_create)
            .map(|t| t.key())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// (key, ns, name) of objects owned by `uid` (in `ns`, or anywhere when "").
    pub fn dependents(&self, uid: &str, ns: &str) -> Vec<(String, Arc<Obj>)> {
        let mut out = Vec::new();
        let keys: Vec<String> = if ns.is_empty() {
            let mut k: Vec<String> = self
                .registry
                .all()
                .iter()
                .filter(|t| !t.virtual_create)
                .map(|t| t.key())
                .collect();
            k.sort();
            k.dedup();
            k
        } else {
            self.namespaced_keys()
        };
        for key in keys {
            let nsf = if ns.is_empty() { None } else { Some(ns) };
            let (items, _, _) = self.store.list(&key, nsf, None, 0, &|o| {
                o.value
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            });
            out.extend(items.into_iter().map(|o| (key.clone(), o)));
        }
        out
    }

    fn orphan_dependents(&self, uid: &str, ns: &str) {
        for (key, dep) in self.dependents(uid, ns) {
            let mut v = dep.full();
            if let Some(refs) = v
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r["uid"] != uid);
            }
            self.store.put(&key, v, EventType::Modified);
        }
    }

    /// Internal read-modify-write (controllers). `f` returns whether it changed anything.
    pub fn modify(
        &self,
        key: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> bool,
    ) -> Option<Arc<Obj>> {
        let _g = self.lock();
        let old = self.store.get(key, ns, name)?;
        let mut v = old.full();
        let before = v.clone();
        if !f(&mut v) {
            return None;
        }
        if spec_changed(&before, &v)
            && let Some(g) = old
                .value
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
        {
            ensure_map(&mut v, &["metadata"]).insert("generation".into(), json!(g + 1));
        }
        if v.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty(&v) {
            return self.store.remove(key, ns, name);
        }
        Some(self.store.put(key, v, EventType::Modified))
    }

    /// Internal delete (controllers, GC): background propagation, no preconditions.
    pub fn remove(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Obj>> {
        let _g = self.lock();
        let old = self.store.get(key, ns, name)?;
        if !finalizers_empty(&old.value) {
            if old.value.pointer("/metadata/deletionTimestamp").is_none() {
                let mut v = old.full();
                ensure_map(&mut v, &["metadata"])
                    .insert("deletionTimestamp".into(), json!(now_rfc3339()));
                return Some(self.store.put(key, v, EventType::Modified));
            }
            return None;
        }
        self.store.remove(key, ns, name)
    }

    pub fn access_review(&self, body: Value) -> ApiResult<Value> {
        let mut v = body;
        if !v.is_object() {
            return Err(ApiError::bad_request("body must be an object"));
        }
        let ra = v.pointer("/spec/resourceAttributes").cloned();
        let allowed = match &ra {
            Some(ra) => {
                let s = |k: &str| ra.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                !self
                    .faults
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_denied(&s("verb"), &s("resource"), &s("group"), &s("namespace"))
            }
            None => true,
        };
        v["apiVersion"] = json!("authorization.k8s.io/v1");
        v["kind"] = json!("SelfSubjectAccessReview");
        ensure_map(&mut v, &["metadata"]).insert("creationTimestamp".into(), Value::Null);
        v["status"] = if allowed {
            json!({"allowed": true, "reason": "meshup-sim allows this"})
        } else {
            json!({"allowed": false, "denied": true, "reason": "denied by the simulator's fault configuration"})
        };
        Ok(v)
    }
}

fn apply_conflict_error(rt: &ResourceType, name: &str, conflicts: &[ssa::Conflict]) -> ApiError {
    let n = conflicts.len();
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager, c.api_version, c.path
            )
        })
        .collect();
    let message = if n == 1 {
        format!("Apply failed with 1 conflict: {}", lines[0])
    } else {
        format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{}\" using {}", c.manager, c.api_version),
                   "field": c.path})
        })
        .collect();
    let mut e = ApiError::new(409, "Conflict", message);
    e.details = Some(json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}));
    e
}
