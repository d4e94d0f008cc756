//! Waiting for workloads with a watch, not polling.
//!
//! Readiness is a small pure function of the object (like kube-runtime's conditions and
//! `kubectl rollout status`), so the rules are unit-tested without a cluster; the watch
//! only feeds it objects as they change.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use serde_json::Value;

use crate::cluster::client::{Cluster, to_value};

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollout {
    /// Every replica updated, ready and available.
    Done { ready: u64, desired: u64 },
    /// Still rolling out; the message says what it waits for.
    Progressing {
        ready: u64,
        desired: u64,
        message: String,
    },
    /// The controller gave up (`ProgressDeadlineExceeded`).
    Failed { message: String },
}

/// `kubectl rollout status` of one workload kind as a pure function of the object (one
/// viewer per kind, like kubectl's `polymorphichelpers.StatusViewerFor`).
pub trait StatusViewer: Sync {
    fn status(&self, obj: &Value) -> Rollout;
}

/// A Deployment's rollout: updated, old replicas gone, available; or its progress deadline.
pub struct DeploymentStatus;

/// A DaemonSet's rollout: every scheduled pod updated and available.
pub struct DaemonSetStatus;

/// The status viewer of a workload kind; `None` for a kind without a rollout.
pub fn viewer(kind: &str) -> Option<&'static dyn StatusViewer> {
    match kind {
        "Deployment" => Some(&DeploymentStatus),
        "DaemonSet" => Some(&DaemonSetStatus),
        _ => None,
    }
}

/// The rollout of `obj` by the viewer of its kind. An object without a kind (a list item
/// may come without one) or of a kind without a viewer is read as a Deployment.
pub fn rollout(obj: &Value) -> Rollout {
    let kind = obj["kind"].as_str().unwrap_or("Deployment");
    viewer(kind).unwrap_or(&DeploymentStatus).status(obj)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

impl StatusViewer for DaemonSetStatus {
    fn status(&self, obj: &Value) -> Rollout {
        let status = &obj["status"];
        let generation = n(&obj["metadata"]["generation"]);
        let observed = n(&status["observedGeneration"]);
        let desired = n(&status["desiredNumberScheduled"]);
        let updated = n(&status["updatedNumberScheduled"]);
        let ready = n(&status["numberAvailable"]);
        if observed >= generation && updated == desired && ready == desired && desired > 0 {
            Rollout::Done { ready, desired }
        } else {
            Rollout::Progressing {
                ready,
                desired,
                message: format!("{ready} of {desired} pods available"),
            }
        }
    }
}

impl StatusViewer for DeploymentStatus {
    fn status(&self, obj: &Value) -> Rollout {
        let spec = &obj["spec"];
        let status = &obj["status"];
        let generation = n(&obj["metadata"]["generation"]);
        let observed = n(&status["observedGeneration"]);
        let desired = spec["replicas"].as_u64().unwrap_or(1);
        let ready = n(&status["readyReplicas"]);
        // Like kubectl: conditions are only read once the controller has seen this generation
        // (a restored Deployment still carries the failed rollout's ProgressDeadlineExceeded).
        if observed < generation {
            return Rollout::Progressing {
                ready,
                desired,
                message: "waiting for the controller to see the update".into(),
            };
        }
        if let Some(conds) = status["conditions"].as_array()
            && let Some(c) = conds
                .iter()
                .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        {
            return Rollout::Failed {
                message: format!(
                    "progress deadline exceeded: {}",
                    c["message"]
                        .as_str()
                        .unwrap_or("the rollout made no progress in time")
                ),
            };
        }
        let updated = n(&status["updatedReplicas"]);
        let replicas = n(&status["replicas"]);
        let available = n(&status["availableReplicas"]);
        let message = if updated < desired {
            format!("{updated} of {desired} replicas updated")
        } else if replicas > updated {
            format!("{} old replicas pending termination", replicas - updated)
        } else if available < updated {
            format!("{available} of {updated} updated replicas available")
        } else {
            return Rollout::Done { ready, desired };
        };
        Rollout::Progressing {
            ready,
            desired,
            message,
        }
    }
}

/// Why a wait ended without the workload being ready.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{kind} {namespace}/{name} not ready after {secs} s: {last}")]
    Timeout {
        kind: String,
        namespace: String,
        name: String,
        secs: u64,
        last: String,
    },
    #[error("{kind} {namespace}/{name} failed: {message}")]
    Failed {
        kind: String,
        namespace: String,
        name: String,
        message: String,
    },
    #[error("watching {kind} {namespace}/{name}: {message}")]
    Watch {
        kind: String,
        namespace: String,
        name: String,
        message: String,
    },
}

/// Watch one workload until its rollout is done, failed, or `deadline` passes.
/// `progress` is called with (ready, desired, message) on every change.
pub async fn until_rolled_out(
    cluster: &Cluster,
    kind: &str,
    namespace: &str,
    name: &str,
    deadline: Instant,
    mut progress: impl FnMut(u64, u64, &str),
) -> Result<Duration, WaitError> {
    let started = Instant::now();
    let watch_err = |message: String| WaitError::Watch {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        message,
    };
    let api = cluster
        .api("apps/v1", kind, Some(namespace))
        .await
        .map_err(|e| watch_err(format!("{e:#}")))?;
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    // The watcher re-lists after 410 Gone and resumes dropped watches; backoff spaces retries.
    let mut stream = watcher(api, cfg)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut last = "not created yet".to_string();
    loop {
        let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
        let obj = match next {
            Err(_) => {
                return Err(WaitError::Timeout {
                    kind: kind.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                    secs: deadline.saturating_duration_since(started).as_secs().max(1),
                    last,
                });
            }
            Ok(None) => return Err(watch_err("the watch ended".into())),
            // Transient watch errors are retried by the backoff; note them and go on.
            Ok(Some(Err(e))) => {
                last = format!("watch error: {e}");
                continue;
            }
            Ok(Some(Ok(obj))) => {
                to_value(&obj).map_err(|e| watch_err(format!("reading the object: {e}")))?
            }
        };
        if let Some(message) = observe(kind, namespace, name, &obj, &mut progress)? {
            last = message;
        } else {
            return Ok(started.elapsed());
        }
    }
}

/// What one observed state of a watched workload means: `Ok(None)` rolled out,
/// `Ok(Some(message))` still rolling out (what it waits for), `Err` the controller gave
/// up. `progress` hears (ready, desired, message) unless it failed.
pub fn observe(
    kind: &str,
    namespace: &str,
    name: &str,
    obj: &Value,
    progress: &mut (impl FnMut(u64, u64, &str) + ?Sized),
) -> Result<Option<String>, WaitError> {
    match rollout(obj) {
        Rollout::Done { ready, desired } => {
            progress(ready, desired, "ready");
            Ok(None)
        }
        Rollout::Failed { message } => Err(WaitError::Failed {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            message,
        }),
        Rollout::Progressing {
            ready,
            desired,
            message,
        } => {
            progress(ready, desired, &message);
            Ok(Some(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(generation: u64, status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn rollout_rules() {
        assert!(matches!(
            rollout(&dep(2, json!({"observedGeneration": 1}))),
            Rollout::Progressing { .. }
        ));
        let half = dep(
            1,
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
        );
        match rollout(&half) {
            Rollout::Progressing { message, .. } => {
                assert!(message.contains("old replicas"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let done = dep(
            1,
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
        );
        assert_eq!(
            rollout(&done),
            Rollout::Done {
                ready: 2,
                desired: 2
            }
        );
        let stuck = dep(
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"istiod-x\" has timed out progressing."}]}),
        );
        assert!(matches!(rollout(&stuck), Rollout::Failed { .. }));
        // Put back after a failed rollout: the old condition is stale until observed.
        let mut restored = stuck.clone();
        restored["metadata"]["generation"] = json!(2);
        assert!(matches!(rollout(&restored), Rollout::Progressing { .. }));
    }

    #[test]
    fn each_kind_has_its_viewer() {
        let ds = |available: u64| {
            json!({"kind": "DaemonSet", "metadata": {"generation": 1}, "status": {
                "observedGeneration": 1, "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3, "numberAvailable": available}})
        };
        assert_eq!(
            rollout(&ds(3)),
            Rollout::Done {
                ready: 3,
                desired: 3
            }
        );
        match rollout(&ds(2)) {
            Rollout::Progressing { message, .. } => assert_eq!(message, "2 of 3 pods available"),
            other => panic!("{other:?}"),
        }
        // The DaemonSet's status read by the Deployment viewer is not done: the kind matters.
        assert!(matches!(
            DeploymentStatus.status(&ds(3)),
            Rollout::Progressing { .. }
        ));
        assert!(viewer("Service").is_none());
        // A list item without a kind is read as a Deployment.
        let mut done = dep(
            1,
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}),
        );
        done.as_object_mut().unwrap().remove("kind");
        assert!(matches!(rollout(&done), Rollout::Done { .. }));
    }
}
