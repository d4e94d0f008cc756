//! The endpoints and endpointslice controllers (one Endpoints object and one
//! EndpointSlice per selecting Service), plus the load-balancer address a
//! local cloud provider would give.

use super::{ANN_MANAGED, Ctl, MANAGER, SLICES, deleting};
use crate::admission::{self, NODE_NAME};
use crate::cluster::WriteOpts;
use crate::selector::LabelSelector;
use crate::store::Obj;
use crate::util::{annotation, ensure_map, get_str, safe_encode, stable_hash};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;

/// What one Service's endpoints are made of this pass.
struct Backends<'a> {
    svc: &'a Obj,
    /// Matching pods with an IP, by IP.
    pods: Vec<&'a Arc<Obj>>,
    ports: Vec<Value>,
}

fn pod_ip(p: &Obj) -> Option<&str> {
    get_str(&p.value, &["status", "podIP"])
}

fn target_ref(ns: &str, p: &Obj) -> Value {
    json!({"kind": "Pod", "namespace": ns, "name": p.name(), "uid": p.uid()})
}

fn manager_opts() -> WriteOpts {
    WriteOpts {
        manager: MANAGER.into(),
        ..Default::default()
    }
}

impl Ctl {
    pub(super) fn endpoints(&mut self, ns: &str, pods: &[Arc<Obj>]) {
        let services = self.list("/services", ns);
        for svc in &services {
            self.load_balancer(ns, svc);
        }
        let mut wanted: HashSet<String> = HashSet::new();
        let mut wanted_slices: HashSet<String> = HashSet::new();
        for svc in &services {
            let Some(b) = backends(svc, pods) else {
                continue;
            };
            wanted.insert(svc.name().to_string());
            wanted_slices.insert(self.sync_slice(ns, &b));
            self.sync_endpoints(ns, &b);
        }
        self.remove_unwanted(SLICES, ns, &wanted_slices);
        self.remove_unwanted("/endpoints", ns, &wanted);
    }

    /// LoadBalancer Services get an address, as with a local load-balancer.
    fn load_balancer(&self, ns: &str, svc: &Obj) {
        if get_str(&svc.value, &["spec", "type"]) == Some("LoadBalancer")
            && svc.value.pointer("/status/loadBalancer/ingress").is_none()
        {
            self.c.modify("/services", ns, svc.name(), |v| {
                ensure_map(v, &["status", "loadBalancer"]).insert(
                    "ingress".into(),
                    json!([{"ip": "127.0.0.1", "ipMode": "VIP"}]),
                );
                true
            });
        }
    }

    /// Creates or updates the Service's EndpointSlice (discovery.k8s.io/v1);
    /// returns its name.
    fn sync_slice(&self, ns: &str, b: &Backends) -> String {
        let svc = b.svc;
        let slice_endpoints = json!(
            b.pods
                .iter()
                .map(|p| {
                    let r = admission::pod_ready(&p.value);
                    json!({
                        "addresses": [pod_ip(p)],
                        "conditions": {"ready": r, "serving": r, "terminating": false},
                        "nodeName": NODE_NAME,
                        "targetRef": target_ref(ns, p),
                    })
                })
                .collect::<Vec<_>>()
        );
        let ports = json!(b.ports);
        let slice_name = format!(
            "{}-{}",
            svc.name(),
            safe_encode(stable_hash(&json!(svc.name())), 5)
        );
        match self.c.store.get(SLICES, ns, &slice_name) {
            Some(es) => {
                if es.value.get("endpoints") != Some(&slice_endpoints)
                    || es.value.get("ports") != Some(&ports)
                {
                    self.c.modify(SLICES, ns, &slice_name, |v| {
                        v["endpoints"] = slice_endpoints;
                        v["ports"] = ports;
                        true
                    });
                }
            }
            None => {
                let es = json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": slice_name, "namespace": ns,
                                 "labels": {"kubernetes.io/service-name": svc.name(),
                                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                                 "annotations": {ANN_MANAGED: "true"},
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc.name(), "uid": svc.uid(),
                                                      "controller": true, "blockOwnerDeletion": true}]},
                    "addressType": "IPv4",
                    "endpoints": slice_endpoints,
                    "ports": ports,
                });
                if let Some(rt) = self
                    .c
                    .registry
                    .lookup("discovery.k8s.io", "v1", "endpointslices")
                {
                    let _ = self.c.create(&rt, ns, es, &manager_opts());
                }
            }
        }
        slice_name
    }

    /// Creates or updates the Service's core/v1 Endpoints.
    fn sync_endpoints(&self, ns: &str, b: &Backends) {
        let svc = b.svc;
        let subsets = subsets(ns, b);
        match self.c.store.get("/endpoints", ns, svc.name()) {
            Some(ep) => {
                if ep.value.get("subsets").unwrap_or(&json!([])) != &subsets {
                    self.c.modify("/endpoints", ns, svc.name(), |v| {
                        v["subsets"] = subsets;
                        true
                    });
                }
            }
            None => {
                let ep = json!({
                    "apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": svc.name(), "namespace": ns,
                                 "labels": svc.value.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                                 "annotations": {ANN_MANAGED: "true"}},
                    "subsets": subsets,
                });
                let _ = self.c.create(&self.ep_rt, ns, ep, &manager_opts());
            }
        }
    }

    /// Removes the objects this controller made for Services that no longer
    /// select pods (or no longer exist).
    fn remove_unwanted(&self, key: &str, ns: &str, wanted: &HashSet<String>) {
        for o in self.list(key, ns) {
            if annotation(&o.value, ANN_MANAGED) == Some("true") && !wanted.contains(o.name()) {
                self.c.remove(key, ns, o.name());
            }
        }
    }
}

/// The pods and ports behind a Service; `None` for a Service without a
/// selector (its endpoints are someone else's to manage).
fn backends<'a>(svc: &'a Obj, pods: &'a [Arc<Obj>]) -> Option<Backends<'a>> {
    let sel = svc
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())?;
    let sel = LabelSelector::from_map(sel);
    let mut matched: Vec<&Arc<Obj>> = pods
        .iter()
        .filter(|p| !deleting(&p.value) && sel.matches_obj(&p.value))
        .filter(|p| pod_ip(p).is_some())
        .collect();
    matched.sort_by_key(|p| pod_ip(p).unwrap_or("").to_string());
    let ports = svc
        .value
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(|p| endpoint_port(p, &matched)).collect())
        .unwrap_or_default();
    Some(Backends {
        svc,
        pods: matched,
        ports,
    })
}

/// An endpoint port for a Service port: a named targetPort resolves to the
/// first matching container port of a backing pod.
fn endpoint_port(p: &Value, pods: &[&Arc<Obj>]) -> Value {
    let service_port = || p.get("port").cloned().unwrap_or(json!(0));
    let port = match p.get("targetPort") {
        Some(Value::Number(n)) => json!(n),
        Some(Value::String(named)) => pods
            .iter()
            .find_map(|pod| container_port(&pod.value, named))
            .unwrap_or_else(service_port),
        _ => service_port(),
    };
    let mut e =
        json!({"port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
    if let Some(n) = p.get("name") {
        e["name"] = n.clone();
    }
    e
}

fn container_port(pod: &Value, name: &str) -> Option<Value> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find_map(|c| {
            c.get("ports")?
                .as_array()?
                .iter()
                .find(|cp| cp["name"] == name)?
                .get("containerPort")
                .cloned()
        })
}

/// Endpoints subsets: one subset with ready and not-ready addresses, or none.
fn subsets(ns: &str, b: &Backends) -> Value {
    if b.pods.is_empty() {
        return json!([]);
    }
    let (mut ready, mut not_ready) = (Vec::new(), Vec::new());
    for p in &b.pods {
        let addr = json!({
            "ip": pod_ip(p),
            "nodeName": NODE_NAME,
            "targetRef": target_ref(ns, p),
        });
        if admission::pod_ready(&p.value) {
            ready.push(addr);
        } else {
            not_ready.push(addr);
        }
    }
    let mut s = json!({"ports": b.ports});
    if !ready.is_empty() {
        s["addresses"] = json!(ready);
    }
    if !not_ready.is_empty() {
        s["notReadyAddresses"] = json!(not_ready);
    }
    json!([s])
}
