//! Versioned object storage with an event history for watches.
//!
//! Each object is kept both as a `serde_json::Value` (for selectors and
//! controllers) and as pre-serialized JSON bytes, so a list response is a
//! concatenation and a watch event is a copy.

use axum::body::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// A stored object: its JSON bytes (what the API serves) and a `Value` for
/// selectors and controllers. For Pods — the bulk of a large cluster — the
/// `Value` is trimmed to what selectors and controllers read (metadata, the
/// containers' names/images/ports, phase, IP and readiness); `full()` parses
/// the bytes when the whole object is needed.
#[derive(Debug)]
pub struct Obj {
    pub value: Value,
    pub json: Bytes,
    trimmed: bool,
}

fn is_pod(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("Pod")
        && v.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn trim_pod(mut v: Value) -> Value {
    let Some(m) = v.as_object_mut() else { return v };
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| k.starts_with("sim.meshup.dev/"));
        }
    }
    if let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut) {
        spec.retain(|k, _| matches!(k.as_str(), "containers" | "nodeName"));
        if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.retain(|k, _| matches!(k.as_str(), "name" | "image" | "ports"));
            }
        }
    }
    if let Some(st) = m.get_mut("status").and_then(Value::as_object_mut) {
        st.retain(|k, _| matches!(k.as_str(), "phase" | "podIP" | "conditions"));
        if let Some(cs) = st.get_mut("conditions").and_then(Value::as_array_mut) {
            cs.retain(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.retain(|k, _| k == "type" || k == "status");
            }
        }
    }
    v
}

impl Obj {
    pub fn new(value: Value) -> Arc<Obj> {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        if is_pod(&value) {
            return Arc::new(Obj {
                value: trim_pod(value),
                json,
                trimmed: true,
            });
        }
        Arc::new(Obj {
            value,
            json,
            trimmed: false,
        })
    }

    /// The whole object.
    pub fn full(&self) -> Value {
        if self.trimmed {
            serde_json::from_slice(&self.json).unwrap_or_else(|_| self.value.clone())
        } else {
            self.value.clone()
        }
    }
    pub fn name(&self) -> &str {
        crate::util::get_str(&self.value, &["metadata", "name"]).unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        crate::util::get_str(&self.value, &["metadata", "namespace"]).unwrap_or("")
    }
    pub fn uid(&self) -> &str {
        crate::util::get_str(&self.value, &["metadata", "uid"]).unwrap_or("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// Storage key of the type ("group/plural").
    pub key: Arc<str>,
    pub ty: EventType,
    pub obj: Arc<Obj>,
}

impl Event {
    /// `{"type":"ADDED","object":{...}}\n`
    pub fn line(&self) -> Bytes {
        self.line_as(self.ty)
    }

    /// The event line with another type (selector transitions).
    pub fn line_as(&self, ty: EventType) -> Bytes {
        let ty = ty.as_str();
        let mut v = Vec::with_capacity(self.obj.json.len() + 32);
        v.extend_from_slice(b"{\"type\":\"");
        v.extend_from_slice(ty.as_bytes());
        v.extend_from_slice(b"\",\"object\":");
        v.extend_from_slice(&self.obj.json);
        v.extend_from_slice(b"}\n");
        Bytes::from(v)
    }
}

type Table = BTreeMap<(String, String), Arc<Obj>>;

struct Inner {
    rv: u64,
    tables: HashMap<String, Table>,
    history: VecDeque<Arc<Event>>,
    /// Events with rv <= floor are no longer in the history.
    floor: u64,
}

pub struct Store {
    inner: RwLock<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    history_cap: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Start from the current state (synthetic ADDED events for everything).
    Now,
    Rv(u64),
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(16384);
        Store {
            inner: RwLock::new(Inner {
                rv: 1,
                tables: HashMap::new(),
                history: VecDeque::new(),
                floor: 1,
            }),
            tx,
            history_cap,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn current_rv(&self) -> u64 {
        self.inner.read().expect("store lock").rv
    }

    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Obj>> {
        let inner = self.inner.read().expect("store lock");
        inner
            .tables
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a type (optionally in one namespace) in (namespace, name) order,
    /// starting after `after`, filtered, at most `limit` (0 = all). Returns the
    /// items, whether more remain, and the store's resourceVersion.
    pub fn list(
        &self,
        key: &str,
        ns: Option<&str>,
        after: Option<(String, String)>,
        limit: usize,
        filter: &dyn Fn(&Obj) -> bool,
    ) -> (Vec<Arc<Obj>>, Option<(String, String)>, u64) {
        let inner = self.inner.read().expect("store lock");
        let mut out = Vec::new();
        let mut next = None;
        if let Some(table) = inner.tables.get(key) {
            use std::ops::Bound;
            let start = match (&after, ns) {
                (Some(a), _) => Bound::Excluded(a.clone()),
                (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
                (None, None) => Bound::Unbounded,
            };
            for ((ons, _), obj) in table.range((start, Bound::Unbounded)) {
                if let Some(ns) = ns
                    && ons != ns
                {
                    break;
                }
                if !filter(obj) {
                    continue;
                }
                if limit > 0 && out.len() == limit {
                    let last: &Arc<Obj> = out.last().expect("non-empty");
                    next = Some((last.namespace().to_string(), last.name().to_string()));
                    break;
                }
                out.push(obj.clone());
            }
        }
        (out, next, inner.rv)
    }

    pub fn count(&self, key: &str) -> usize {
        let inner = self.inner.read().expect("store lock");
        inner.tables.get(key).map(|t| t.len()).unwrap_or(0)
    }

    /// Stores `value` (stamping a new resourceVersion) and emits an event.
    pub fn put(&self, key: &str, mut value: Value, ty: EventType) -> Arc<Obj> {
        let mut inner = self.inner.write().expect("store lock");
        inner.rv += 1;
        let rv = inner.rv;
        crate::util::ensure_map(&mut value, &["metadata"])
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let obj = Obj::new(value);
        let k = (obj.namespace().to_string(), obj.name().to_string());
        inner
            .tables
            .entry(key.to_string())
            .or_default()
            .insert(k, obj.clone());
        self.emit(&mut inner, key, ty, obj.clone(), rv);
        obj
    }

    pub fn remove(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Obj>> {
        let mut inner = self.inner.write().expect("store lock");
        let old = inner
            .tables
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        inner.rv += 1;
        let rv = inner.rv;
        let mut v = old.full();
        crate::util::ensure_map(&mut v, &["metadata"])
            .insert("resourceVersion".into(), Value::String(rv.to_string()));
        let obj = Obj::new(v);
        self.emit(&mut inner, key, EventType::Deleted, obj.clone(), rv);
        Some(obj)
    }

    fn emit(&self, inner: &mut Inner, key: &str, ty: EventType, obj: Arc<Obj>, rv: u64) {
        let ev = Arc::new(Event {
            rv,
            key: Arc::from(key),
            ty,
            obj,
        });
        inner.history.push_back(ev.clone());
        while inner.history.len() > self.history_cap {
            if let Some(old) = inner.history.pop_front() {
                inner.floor = old.rv;
            }
        }
        let _ = self.tx.send(ev);
    }

    /// Starts a watch: the events to replay and a live receiver, atomically.
    /// `Err(())` when `since` is older than the retained history (410 Gone).
    #[allow(clippy::type_complexity, clippy::result_unit_err)]
    pub fn watch_from(
        &self,
        key: &str,
        ns: Option<&str>,
        since: Since,
    ) -> Result<(Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>, u64), ()> {
        let inner = self.inner.read().expect("store lock");
        let rx = self.tx.subscribe();
        let replay = match since {
            Since::Rv(rv) => {
                if rv < inner.floor {
                    return Err(());
                }
                inner
                    .history
                    .iter()
                    .filter(|e| e.rv > rv && &*e.key == key)
                    .filter(|e| ns.is_none_or(|n| e.obj.namespace() == n))
                    .cloned()
                    .collect()
            }
            Since::Now => {
                let k: Arc<str> = Arc::from(key);
                inner
                    .tables
                    .get(key)
                    .map(|t| {
                        t.iter()
                            .filter(|((ons, _), _)| ns.is_none_or(|n| ons == n))
                            .map(|(_, o)| {
                                Arc::new(Event {
                                    rv: 0,
                                    key: k.clone(),
                                    ty: EventType::Added,
                                    obj: o.clone(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
        };
        Ok((replay, rx, inner.rv))
    }

    /// Namespaces that hold objects of any namespaced type.
    pub fn keys(&self) -> Vec<String> {
        self.inner
            .read()
            .expect("store lock")
            .tables
            .keys()
            .cloned()
            .collect()
    }

    /// Removes a whole table (a CRD's objects), emitting DELETED events.
    pub fn drop_table(&self, key: &str) {
        let names: Vec<(String, String)> = {
            let inner = self.inner.read().expect("store lock");
            inner
                .tables
                .get(key)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default()
        };
        for (ns, name) in names {
            self.remove(key, &ns, &name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn pagination_in_order() {
        let s = Store::new(100);
        for ns in ["a", "b"] {
            for i in 0..5 {
                s.put("/pods", pod(ns, &format!("p{i}")), EventType::Added);
            }
        }
        let mut after = None;
        let mut names = vec![];
        loop {
            let (items, next, _) = s.list("/pods", None, after.clone(), 3, &|_| true);
            names.extend(
                items
                    .iter()
                    .map(|o| format!("{}/{}", o.namespace(), o.name())),
            );
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(names.len(), 10);
        assert_eq!(names[0], "a/p0");
        assert_eq!(names[9], "b/p4");
        let (items, next, _) = s.list("/pods", Some("b"), None, 0, &|_| true);
        assert_eq!(items.len(), 5);
        assert!(next.is_none());
        let (items, next, _) = s.list("/pods", Some("a"), None, 5, &|_| true);
        assert_eq!(items.len(), 5);
        assert!(next.is_none(), "exactly limit items left: no continue");
    }

    #[test]
    fn watch_gone_when_too_old() {
        let s = Store::new(3);
        for i in 0..10 {
            s.put("/pods", pod("a", &format!("p{i}")), EventType::Added);
        }
        assert!(s.watch_from("/pods", None, Since::Rv(2)).is_err());
        let rv = s.current_rv();
        let (replay, _, _) = s.watch_from("/pods", None, Since::Rv(rv - 2)).unwrap();
        assert_eq!(replay.len(), 2);
        let (replay, _, _) = s.watch_from("/pods", None, Since::Now).unwrap();
        assert_eq!(replay.len(), 10);
    }
}
