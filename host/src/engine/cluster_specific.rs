//! The values an installer chooses from the cluster it installs to (istioctl's
//! cluster-specific settings): chosen again for a target the same way, and a change of one
//! is said, never taken for something the user set or reverts.

use serde_json::Value;

use crate::base::values;
use crate::base::values::ValueChange;
use crate::cluster::kube::Kube;
use crate::release::bundle::{ClusterSpecific, parse_minor};
use crate::release::source::Values;

/// The values `rules` choose for this cluster, as a tree.
pub async fn choose(cluster: &dyn Kube, rules: &[ClusterSpecific]) -> anyhow::Result<Value> {
    let mut out = Value::Object(Default::default());
    for c in rules {
        let holds = match (&c.if_served, &c.if_kubernetes_at_least) {
            (Some(s), _) => cluster.serves(&s.api_version, &s.resource).await?,
            (None, Some(min)) => {
                let running = parse_minor(&cluster.server_version().await?);
                running.is_some() && running >= parse_minor(min)
            }
            (None, None) => false,
        };
        let value = if holds {
            Some(&c.then)
        } else {
            c.otherwise.as_ref()
        };
        if let Some(v) = value {
            let path: Vec<&str> = c.path.split('.').collect();
            values::insert(&mut out, &path, v.clone());
        }
    }
    Ok(out)
}

/// Values the rules cover that differ between what runs (`old`, merged values) and this
/// run, and that the user does not set now: the installer chose them from the cluster
/// once, and this run chooses again.
pub fn changed(rules: &[ClusterSpecific], old: &Value, now: &Values) -> Vec<ValueChange> {
    rules
        .iter()
        .filter_map(|c| {
            let path: Vec<&str> = c.path.split('.').collect();
            let set_now = values::lookup(&now.overlay, &path).is_some();
            let old = values::lookup(old, &path)?.clone();
            let new = values::lookup(&now.merged, &path)
                .cloned()
                .unwrap_or(Value::Null);
            (!set_now && old != new).then(|| ValueChange {
                path: c.path.clone(),
                old,
                new,
            })
        })
        .collect()
}
