//! Putting the cluster back exactly as it was before a run.
//!
//! Before its first write, a run captures the live state of every object it will create,
//! change or prune (`capture`) and stores it in its pending history record. A
//! restore puts those objects back as they were (the whole object, including fields other
//! field managers own), deletes only what the run created, waits for every workload it put
//! back, and verifies them before anyone is told "rolled back". It needs neither the
//! bundle nor a recorded manifest, so it works the same for installs meshup did not make
//! (istioctl's), for interrupted runs and for `--no-rollback` followed by `meshup rollback`.

use std::time::Instant;

use anyhow::Context as _;

use serde_json::Value;

use crate::base::object::ObjectKey;
use crate::cluster::client::without_server_fields;
use crate::cluster::kube::Kube;
use crate::engine::apply::{self, ComponentReport, Failure, Report};
use crate::engine::plan::{Action, Plan};
use crate::engine::progress::Progress;
use crate::engine::prune;
pub use crate::installed::capture::{Captured, Snapshot};
use crate::installed::installers;
use crate::release::bundle::Component;

/// Read every object the plan creates, changes or prunes. Objects the plan leaves
/// unchanged are not captured: the run does not change them.
pub async fn capture(cluster: &dyn Kube, plan: &Plan) -> anyhow::Result<Snapshot> {
    let touched = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .map(|c| (c.key.clone(), c.component.clone()));
    capture_keys(cluster, touched, plan.current_version.clone()).await
}

/// Read the given objects (with the component each belongs to) as they are now.
pub async fn capture_keys(
    cluster: &dyn Kube,
    keys: impl IntoIterator<Item = (ObjectKey, String)>,
    version: Option<String>,
) -> anyhow::Result<Snapshot> {
    let mut objects = Vec::new();
    for (key, component) in keys {
        // A kind not served yet (its CRD comes with this run) has nothing to capture.
        let before = cluster
            .get_if_served(&key)
            .await
            .with_context(|| format!("capturing {key} before changing it"))?
            .map(|v| without_server_fields(&v));
        objects.push(Captured {
            key,
            component,
            before,
        });
    }
    Ok(Snapshot { version, objects })
}

/// What to put back, in apply order: component order of `layout`, then kind order.
fn put_back<'a>(snapshot: &'a Snapshot, layout: &[Component]) -> Vec<(&'a Captured, &'a Value)> {
    let rank = |c: &Captured| {
        layout
            .iter()
            .position(|l| l.name == c.component)
            .unwrap_or(layout.len())
    };
    let mut out: Vec<(&Captured, &Value)> = snapshot
        .objects
        .iter()
        .filter_map(|c| c.before.as_ref().map(|b| (c, b)))
        .collect();
    out.sort_by_key(|(c, _)| (rank(c), apply::kind_rank(&c.key.kind)));
    out
}

/// Objects the run created that did not exist before (never CRDs or Namespaces).
pub fn created(snapshot: &Snapshot) -> Vec<ObjectKey> {
    let existed: std::collections::BTreeSet<ObjectKey> = snapshot
        .objects
        .iter()
        .filter(|c| c.before.is_some())
        .map(|c| c.key.clone())
        .collect();
    prune::dropped(snapshot.objects.iter().map(|c| &c.key), &existed)
}

/// The workloads as they were: what the restore must find running.
pub fn workloads(snapshot: &Snapshot) -> Vec<apply::Workload> {
    apply::workloads(snapshot.objects.iter().filter_map(|c| c.before.as_ref()))
}

/// Put the captured objects back, remove what the run created, wait for every workload
/// and verify it runs what it ran before.
pub async fn restore(
    cluster: &dyn Kube,
    snapshot: &Snapshot,
    layout: &[Component],
    opts: &apply::Options,
    progress: &dyn Progress,
) -> Result<Report, Failure> {
    let started = Instant::now();
    let mut components = Vec::new();
    let put_back = put_back(snapshot, layout);
    let mut names: Vec<&str> = Vec::new();
    for (c, _) in &put_back {
        if !names.contains(&c.component.as_str()) {
            names.push(&c.component);
        }
    }
    for name in names {
        let t = Instant::now();
        let objs: Vec<&Value> = put_back
            .iter()
            .filter(|(c, _)| c.component == name)
            .map(|(_, v)| *v)
            .collect();
        for v in &objs {
            cluster
                .replace_or_create(v, installers::field_manager(v))
                .await
                .map_err(|e| Failure::Apply {
                    component: name.to_string(),
                    message: format!("{e:#}"),
                })?;
        }
        let workloads = apply::workloads(objs.iter().copied());
        let ready = apply::wait_workloads(cluster, name, &workloads, opts, progress).await?;
        components.push(ComponentReport::done(
            progress,
            name,
            objs.len(),
            ready,
            t,
            "restored",
        ));
    }
    let created = created(snapshot);
    for key in created.iter().rev() {
        cluster
            .delete(key)
            .await
            .map_err(|e| Failure::Prune(format!("{e:#}")))?;
    }
    apply::verify_workloads(cluster, &workloads(snapshot), snapshot.version.as_deref()).await?;
    Ok(Report {
        components,
        pruned: created.iter().map(|k| k.to_string()).collect(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("istio-system".into()),
            name: name.into(),
        }
    }

    fn captured(kind: &str, name: &str, before: Option<Value>) -> Captured {
        Captured {
            key: key(kind, name),
            component: "istiod".into(),
            before,
        }
    }

    #[test]
    fn an_earlier_capture_wins_and_this_run_adds_the_rest() {
        let earlier = Snapshot {
            version: Some("1.7.8".into()),
            objects: vec![captured("Deployment", "istiod", Some(json!({"v": 1})))],
        };
        let now = Snapshot {
            version: Some("1.8.6".into()),
            objects: vec![
                captured("Deployment", "istiod", Some(json!({"v": 2}))),
                captured("ConfigMap", "new", None),
            ],
        };
        let s = now.under(Some(&earlier));
        assert_eq!(s.version.as_deref(), Some("1.7.8"));
        assert_eq!(s.objects.len(), 2);
        assert_eq!(s.objects[0].before, Some(json!({"v": 1})));
    }

    #[test]
    fn only_what_the_run_created_is_removed_never_crds_or_namespaces() {
        let s = Snapshot {
            version: Some("1.7.8".into()),
            objects: vec![
                captured("Deployment", "istiod", Some(json!({}))),
                captured("ClusterRoleBinding", "istiod-istio-system", None),
                captured("CustomResourceDefinition", "workloadgroups", None),
                captured("Namespace", "istio-system", None),
            ],
        };
        assert_eq!(
            created(&s),
            vec![key("ClusterRoleBinding", "istiod-istio-system")]
        );
    }

    #[test]
    fn server_fields_are_not_written_back() {
        let live = json!({"metadata": {"name": "x", "uid": "u", "resourceVersion": "7", "managedFields": [],
            "labels": {"a": "b"}}, "spec": {"k": 1}, "status": {"ready": true}});
        assert_eq!(
            without_server_fields(&live),
            json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"k": 1}})
        );
    }
}
