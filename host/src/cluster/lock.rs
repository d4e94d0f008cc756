//! The upgrade lock: a `coordination.k8s.io` Lease held for the whole mutation and
//! renewed while working. A second run is refused with who holds it and since when;
//! a lock whose holder stopped renewing can be taken over after it expires, and the
//! takeover is always said out loud.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::ObjectMeta;

use crate::base::exit::{Code, Exit};
use crate::base::object::ObjectKey;
use crate::cluster::kube::Kube;

pub const LEASE_NAME: &str = "meshup-upgrade-lock";

/// How long the lock outlives its last renewal: 30 s, or `MESHUP_LOCK_SECONDS`
/// (tests shorten it to exercise the takeover of a crashed run's lock).
pub fn duration() -> Duration {
    std::env::var("MESHUP_LOCK_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s >= 3)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

pub struct Lock {
    cluster: Arc<dyn Kube>,
    key: ObjectKey,
    pub holder: String,
    renewer: tokio::task::JoinHandle<()>,
    /// Set when we took over an expired lock: who held it.
    pub took_over: Option<String>,
}

/// Who we are, for the holder field: `user@host pid N`.
pub fn identity() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The lock's Lease in `namespace`.
pub fn key(namespace: &str) -> ObjectKey {
    ObjectKey {
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        namespace: Some(namespace.into()),
        name: LEASE_NAME.into(),
    }
}

fn lease(namespace: &str, holder: &str, duration: Duration, transitions: i32) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(LEASE_NAME.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(duration.as_secs() as i32),
            acquire_time: Some(now()),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }),
    }
}

/// Seconds since the holder last renewed, and whether that is past the lease duration.
fn expiry(l: &Lease) -> (i64, bool) {
    let spec = l.spec.clone().unwrap_or_default();
    let renewed = spec
        .renew_time
        .or(spec.acquire_time)
        .map(|t| t.0)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let age = jiff::Timestamp::now().as_second() - renewed.as_second();
    (
        age,
        age > i64::from(spec.lease_duration_seconds.unwrap_or(30)),
    )
}

impl Lock {
    /// Take the lock in `namespace`, or fail with who holds it.
    pub async fn acquire(
        cluster: Arc<dyn Kube>,
        namespace: &str,
        duration: Duration,
    ) -> anyhow::Result<Lock> {
        let key = key(namespace);
        let holder = identity();
        let mut took_over = None;
        let created = cluster
            .create(&as_value(&lease(namespace, &holder, duration, 0))?)
            .await
            .context("taking the upgrade lock")?;
        if created.is_none() {
            let current = cluster
                .get(&key)
                .await
                .context("reading the upgrade lock")?
                .context("the upgrade lock vanished while being read; run again")?;
            let current: Lease =
                serde_json::from_value(current).context("reading the upgrade lock")?;
            let spec = current.spec.clone().unwrap_or_default();
            let who = spec
                .holder_identity
                .clone()
                .unwrap_or_else(|| "someone".into());
            let since = spec
                .acquire_time
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_else(|| "unknown".into());
            let (age, expired) = expiry(&current);
            if !expired {
                return Err(Exit::new(
                    Code::Blocked,
                    format!(
                        "another meshup run holds the upgrade lock (Lease {namespace}/{LEASE_NAME}): {who}, since {since}, renewed {age} s ago; wait for it to finish"
                    ),
                )
                .into());
            }
            // Expired: the holder crashed. Replace it, guarded by resourceVersion so two
            // runs racing for the same stale lock cannot both win.
            let mut next = lease(
                namespace,
                &holder,
                duration,
                spec.lease_transitions.unwrap_or(0) + 1,
            );
            next.metadata.resource_version = current.metadata.resource_version.clone();
            cluster.replace(&as_value(&next)?).await.map_err(|e| {
                anyhow::anyhow!(
                    "taking over the stale upgrade lock held by {who}: {}",
                    crate::cluster::client::root_cause(&e)
                )
            })?;
            took_over = Some(format!("{who} (since {since}, not renewed for {age} s)"));
        }
        let renewer = tokio::spawn(renew(cluster.clone(), key.clone(), duration));
        Ok(Lock {
            cluster,
            key,
            holder,
            renewer,
            took_over,
        })
    }

    /// Release the lock (also done by the next run after expiry if we crash).
    pub async fn release(self) -> anyhow::Result<()> {
        self.renewer.abort();
        self.cluster
            .delete(&self.key)
            .await
            .context("releasing the upgrade lock")
    }
}

fn as_value(lease: &Lease) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(lease)?;
    v["apiVersion"] = "coordination.k8s.io/v1".into();
    v["kind"] = "Lease".into();
    Ok(v)
}

/// Renew at a third of the duration, so two missed renewals still keep the lock.
async fn renew(cluster: Arc<dyn Kube>, key: ObjectKey, duration: Duration) {
    let mut tick = tokio::time::interval(duration / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let patch = serde_json::json!({"spec": {"renewTime": now()}});
        // A failed renewal is retried at the next tick; the lease outlives two misses.
        let _ = cluster.merge_patch(&key, &patch).await;
    }
}
