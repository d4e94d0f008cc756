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

use crate::cluster::{Cluster, to_value};

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

/// `kubectl rollout status` for a Deployment (or DaemonSet) as a pure function.
pub fn rollout(obj: &Value) -> Rollout {
    let kind = obj["kind"].as_str().unwrap_or("Deployment");
    let spec = &obj["spec"];
    let status = &obj["status"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let generation = n(&obj["metadata"]["generation"]);
    let observed = n(&status["observedGeneration"]);
    if kind == "DaemonSet" {
        let desired = n(&status["desiredNumberScheduled"]);
        let updated = n(&status["updatedNumberScheduled"]);
        let ready = n(&status["numberAvailable"]);
        return if observed >= generation && updated == desired && ready == desired && desired > 0 {
            Rollout::Done { ready, desired }
        } else {
            Rollout::Progressing {
                ready,
                desired,
                message: format!("{ready} of {desired} pods available"),
            }
        };
    }
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
        match rollout(&obj) {
            Rollout::Done { ready, desired } => {
                progress(ready, desired, "ready");
                return Ok(started.elapsed());
            }
            Rollout::Failed { message } => {
                return Err(WaitError::Failed {
                    kind: kind.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                    message,
                });
            }
            Rollout::Progressing {
                ready,
                desired,
                message,
            } => {
                progress(ready, desired, &message);
                last = message;
            }
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
}
