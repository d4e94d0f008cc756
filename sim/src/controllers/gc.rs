//! Garbage collection: dependents of deleted owners, foreground deletion,
//! and terminating namespaces.

use super::{Ctl, deleting};
use crate::store::Event;
use serde_json::Value;

impl Ctl {
    /// Removes every object of a terminating namespace, then the namespace;
    /// false when `ns` is not terminating.
    pub(super) fn terminate_namespace(&mut self, ns: &str) -> bool {
        let Some(nso) = self.c.store.get("/namespaces", "", ns) else {
            return false;
        };
        if !deleting(&nso.value) {
            return false;
        }
        for key in self.c.namespaced_keys() {
            for o in self.list(&key, ns) {
                self.c.store.remove(&key, ns, o.name());
            }
        }
        self.c.store.remove("/namespaces", "", ns);
        true
    }

    /// The dependents of a deleted owner lose their reference to it, and are
    /// removed when no other owner is still alive.
    pub(super) fn gc(&mut self, e: &Event) {
        let uid = e.obj.uid().to_string();
        if uid.is_empty() {
            return;
        }
        for (key, dep) in self.c.dependents(&uid, e.obj.namespace()) {
            let refs = dep
                .value
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let others_alive = refs
                .iter()
                .filter(|r| r["uid"] != uid.as_str())
                .any(|r| self.owner_alive(r, dep.namespace()));
            if others_alive {
                let u = uid.clone();
                self.c.modify(&key, dep.namespace(), dep.name(), |v| {
                    if let Some(a) = v
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|r| r["uid"] != u.as_str());
                    }
                    true
                });
            } else {
                self.c.remove(&key, dep.namespace(), dep.name());
            }
        }
    }

    /// Whether the owner an ownerReference names (by uid) still exists.
    pub(super) fn owner_alive(&self, r: &Value, dependent_ns: &str) -> bool {
        let rt = self.c.registry.by_kind(
            r["apiVersion"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
        );
        rt.is_some_and(|rt| {
            let ns = if rt.namespaced { dependent_ns } else { "" };
            self.c
                .store
                .get(&rt.key(), ns, r["name"].as_str().unwrap_or(""))
                .is_some_and(|o| o.uid() == r["uid"])
        })
    }

    /// Foreground deletion: an owner keeps its `foregroundDeletion` finalizer
    /// until its dependents are gone.
    pub(super) fn foreground(&mut self, ns: &str) {
        let pending: Vec<(String, String, String)> = self
            .c
            .foreground
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, n, _)| n == ns || n.is_empty())
            .cloned()
            .collect();
        for (key, n, name) in pending {
            let Some(obj) = self.c.store.get(&key, &n, &name) else {
                self.c
                    .foreground
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(key, n, name));
                continue;
            };
            let deps = self.c.dependents(obj.uid(), &n);
            if deps.is_empty() {
                self.c.modify(&key, &n, &name, |v| {
                    if let Some(a) = v
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|f| f != "foregroundDeletion");
                    }
                    true
                });
                self.c
                    .foreground
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(key, n, name));
            } else {
                for (k, d) in deps {
                    if !deleting(&d.value) {
                        self.c.remove(&k, d.namespace(), d.name());
                    }
                }
            }
        }
    }
}
