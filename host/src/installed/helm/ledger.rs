//! Writing Helm's release records as `helm upgrade` writes them, around a meshup run.
//!
//! - `hold`: before the first write, revision N+1 of each release the run changes is
//!   created `pending-upgrade` ("Preparing upgrade"), with the target chart, the values and
//!   the manifest the run applies. It is Helm's own lock: a `helm upgrade` or `rollback`
//!   of the release refuses while it is there, and so does a second meshup run (the Secret
//!   exists: Create, not Update).
//! - `settle`: after the run, every pending revision meshup wrote (marked with the
//!   `WRITTEN_BY` annotation, which Helm never copies) is finished as the run ended:
//!   verified upgrade → N+1 `deployed` ("Upgrade complete") and the last deployed one
//!   `superseded`; verified restore → N+1 `failed` and N+2 a `deployed` copy of the last
//!   deployed one ("Rollback to N"), as `helm upgrade --rollback-on-failure` leaves it;
//!   otherwise N+1 `failed` with what is known. A run killed with `kill -9` leaves its
//!   pending revision, which the next meshup run settles the same way.
//! - the oldest revisions beyond `--history-max` are deleted, never the deployed one, as
//!   Helm's `removeLeastRecent` does.
//!
//! Labels and JSON always agree (`record::encode` takes the status labels from the JSON).

use serde_json::{Map, Value};

use crate::base::object::{Object, ObjectKey};
use crate::cluster::kube::Kube;
use crate::installed::helm::record::{self, MESHUP, OWNER, Stamp, Status, WRITTEN_BY};
use crate::installed::helm::releases::{self, RELEASE_NAME, RELEASE_NAMESPACE};

/// Why a hold cannot be taken (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "Helm release {namespace}/{name} changed while this run started (revision {revision} exists: another `helm` or meshup run holds it); nothing was changed: see `helm history {name} -n {namespace}` and run again when it is done"
    )]
    Held {
        namespace: String,
        name: String,
        revision: u32,
    },
    #[error(
        "Helm release {namespace}/{name} has no deployed revision to upgrade from (`helm history {name} -n {namespace}`); nothing was changed: resolve it with helm first"
    )]
    NoDeployed { namespace: String, name: String },
}

/// One release's new revision, as the run applies it.
pub struct Next<'a> {
    pub release: &'a releases::Release,
    /// The target chart, as Helm stores it.
    pub chart: Value,
    /// The user's values for it (what `helm get values` prints afterwards).
    pub config: Map<String, Value>,
    /// Its objects as the run applies them.
    pub objects: Vec<&'a Object>,
}

/// The time now as Helm writes it (RFC 3339 with nanoseconds) and as a label (Unix seconds).
fn now() -> (String, i64) {
    let t = jiff::Timestamp::now();
    (t.to_string(), t.as_second())
}

/// The manifest Helm stores: each object as `---\n# Source: CHART/templates/FILE\n…`, without
/// the release annotations, which Helm adds when it applies and never stores.
pub fn manifest(chart: &str, objects: &[&Object]) -> String {
    let mut out = String::new();
    for o in objects {
        let mut value = o.value.clone();
        if let Some(a) = value["metadata"]["annotations"].as_object_mut() {
            a.remove(RELEASE_NAME);
            a.remove(RELEASE_NAMESPACE);
            if a.is_empty() {
                value["metadata"]
                    .as_object_mut()
                    .map(|m| m.remove("annotations"));
            }
        }
        let file = o.source.rsplit('/').next().unwrap_or(&o.source);
        out.push_str(&format!(
            "---\n# Source: {chart}/templates/{file}\n{}",
            serde_yaml::to_string(&value).unwrap_or_default()
        ));
    }
    out
}

/// Take the hold: create revision N+1 `pending-upgrade` of each release. If one cannot be
/// taken, those already taken are let go (deleted) and nothing else was written.
pub async fn hold(cluster: &dyn Kube, next: &[Next<'_>]) -> anyhow::Result<()> {
    let mut taken: Vec<ObjectKey> = Vec::new();
    for n in next {
        match hold_one(cluster, n).await {
            Ok(key) => taken.push(key),
            Err(e) => {
                for key in &taken {
                    let _ = cluster.delete(key).await;
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

async fn hold_one(cluster: &dyn Kube, n: &Next<'_>) -> anyhow::Result<ObjectKey> {
    let r = n.release;
    let Some(base) = &r.deployed else {
        return Err(Error::NoDeployed {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
        .into());
    };
    let (at, secs) = now();
    let chart_name = r.chart.as_str();
    let mut pending = (**base).clone();
    pending.revision = r.revision + 1;
    pending.chart = record::Chart(n.chart.as_object().cloned().unwrap_or_default());
    pending.config = n.config.clone();
    pending.manifest = manifest(chart_name, &n.objects);
    pending.info.status = Status::PendingUpgrade;
    pending.info.description = "Preparing upgrade".into();
    pending.info.last_deployed = Some(at);
    pending.info.deleted = None;
    let secret = marked(record::encode(&pending, Stamp::Created(secs)));
    let key = ObjectKey::of(&secret);
    match cluster.create(&secret).await? {
        Some(_) => Ok(key),
        None => Err(Error::Held {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            revision: pending.revision,
        }
        .into()),
    }
}

/// A record as meshup writes it: annotated as meshup's.
fn marked(mut secret: Value) -> Value {
    secret["metadata"]["annotations"] = serde_json::json!({ WRITTEN_BY: MESHUP });
    secret
}

/// How the run the pending revisions belong to ended.
pub use crate::installed::installer::End;

/// Finish every pending revision meshup wrote, as `end` says; then trim each release's
/// history to `history_max`. Whether there was any.
pub async fn settle(cluster: &dyn Kube, end: End<'_>, history_max: usize) -> anyhow::Result<bool> {
    let selector = format!("owner={OWNER},status={}", Status::PendingUpgrade.as_str());
    let pending: Vec<Value> = cluster
        .list("v1", "Secret", None, Some(&selector))
        .await?
        .into_iter()
        .filter(|s| s["metadata"]["annotations"][WRITTEN_BY] == MESHUP)
        .collect();
    for secret in &pending {
        settle_one(cluster, secret, end, history_max).await?;
    }
    Ok(!pending.is_empty())
}

/// One release's records: the revisions, decoded lazily.
struct History {
    namespace: String,
    secrets: Vec<Value>,
}

impl History {
    async fn read(cluster: &dyn Kube, namespace: &str, name: &str) -> anyhow::Result<History> {
        let mut secrets = cluster
            .list(
                "v1",
                "Secret",
                Some(namespace),
                Some(&record::history_selector(name)),
            )
            .await?;
        secrets.sort_by_key(|s| record::revision_of(s).unwrap_or(0));
        Ok(History {
            namespace: namespace.to_string(),
            secrets,
        })
    }

    /// The last revision labelled deployed (Helm's `Deployed`), below `below`.
    fn deployed_below(&self, below: u32) -> Option<&Value> {
        self.secrets.iter().rev().find(|s| {
            s["metadata"]["labels"]["status"] == Status::Deployed.as_str()
                && record::revision_of(s).is_some_and(|r| r < below)
        })
    }
}

async fn settle_one(
    cluster: &dyn Kube,
    secret: &Value,
    end: End<'_>,
    history_max: usize,
) -> anyhow::Result<()> {
    let mut pending = record::decode(secret)?;
    let namespace = secret["metadata"]["namespace"].as_str().unwrap_or_default();
    let history = History::read(cluster, namespace, &pending.name).await?;
    let base = match history.deployed_below(pending.revision) {
        Some(s) => Some((s.clone(), record::decode(s)?)),
        None => None,
    };
    let (at, secs) = now();
    let name = pending.name.clone();
    match end {
        End::Deployed => {
            pending.info.status = Status::Deployed;
            pending.info.description = "Upgrade complete".into();
            pending.info.last_deployed = Some(at);
            rewrite(cluster, secret, &pending, secs).await?;
            if let Some((s, mut b)) = base {
                b.info.status = Status::Superseded;
                rewrite(cluster, &s, &b, secs).await?;
            }
        }
        End::Restored { failure } => {
            pending.info.status = Status::Failed;
            pending.info.description = format!("Upgrade \"{name}\" failed: {failure}");
            rewrite(cluster, secret, &pending, secs).await?;
            if let Some((s, mut b)) = base {
                let mut copy = b.clone();
                copy.revision = pending.revision + 1;
                copy.info.status = Status::Deployed;
                copy.info.description = format!("Rollback to {}", b.revision);
                copy.info.last_deployed = Some(at);
                let created = marked(record::encode(&copy, Stamp::Created(secs)));
                cluster.create(&created).await?.ok_or_else(|| Error::Held {
                    namespace: namespace.to_string(),
                    name: name.clone(),
                    revision: copy.revision,
                })?;
                b.info.status = Status::Superseded;
                rewrite(cluster, &s, &b, secs).await?;
            }
        }
        End::Failed { message } => {
            pending.info.status = Status::Failed;
            pending.info.description = format!("Upgrade \"{name}\" failed: {message}");
            rewrite(cluster, secret, &pending, secs).await?;
        }
    }
    trim(cluster, &history.namespace, &name, history_max).await
}

/// Write `release` over the Secret it was read from (guarded by its resourceVersion).
async fn rewrite(
    cluster: &dyn Kube,
    was: &Value,
    release: &record::Release,
    secs: i64,
) -> anyhow::Result<()> {
    let mut secret = record::encode(release, Stamp::Modified(secs));
    secret["metadata"]["resourceVersion"] = was["metadata"]["resourceVersion"].clone();
    if !was["metadata"]["annotations"].is_null() {
        secret["metadata"]["annotations"] = was["metadata"]["annotations"].clone();
    }
    cluster.replace(&secret).await?;
    Ok(())
}

/// Delete the oldest revisions until at most `max` are left, never the last deployed one
/// (Helm's `removeLeastRecent`). `max` 0: no limit, as in Helm.
async fn trim(cluster: &dyn Kube, namespace: &str, name: &str, max: usize) -> anyhow::Result<()> {
    if max == 0 {
        return Ok(());
    }
    let history = History::read(cluster, namespace, name).await?;
    let keep = history
        .deployed_below(u32::MAX)
        .and_then(record::revision_of);
    let mut over = history.secrets.len().saturating_sub(max);
    for s in &history.secrets {
        if over == 0 {
            break;
        }
        if record::revision_of(s) == keep {
            continue;
        }
        cluster.delete(&ObjectKey::of(s)).await?;
        over -= 1;
    }
    Ok(())
}

/// After meshup re-applied a recorded revision of its own (`meshup rollback`), verified:
/// each Helm release whose objects it applied gets a revision as `helm rollback` writes it,
/// a `deployed` copy of its newest revision of `version` ("Rollback to M"), every deployed
/// one before it `superseded`. The releases are the ones the applied objects name. Returns
/// the releases no revision of `version` was found for (their records are left as they
/// are).
pub async fn rolled_back(
    cluster: &dyn Kube,
    objects: &[&Value],
    version: &str,
    history_max: usize,
) -> anyhow::Result<Vec<String>> {
    let mut named = std::collections::BTreeSet::new();
    for o in objects {
        let a = &o["metadata"]["annotations"];
        if let (Some(name), Some(ns)) = (a[RELEASE_NAME].as_str(), a[RELEASE_NAMESPACE].as_str()) {
            named.insert((ns.to_string(), name.to_string()));
        }
    }
    let mut missing = Vec::new();
    for (namespace, name) in named {
        if !roll_back_one(cluster, &namespace, &name, version).await? {
            missing.push(format!("{namespace}/{name}"));
        }
        trim(cluster, &namespace, &name, history_max).await?;
    }
    Ok(missing)
}

/// Revisions looked at for the one of a version, newest first, at most.
const MAX_LOOKBACK: usize = 20;

async fn roll_back_one(
    cluster: &dyn Kube,
    namespace: &str,
    name: &str,
    version: &str,
) -> anyhow::Result<bool> {
    let history = History::read(cluster, namespace, name).await?;
    let Some(newest) = history.secrets.last().and_then(record::revision_of) else {
        return Ok(false);
    };
    let mut target = None;
    for s in history.secrets.iter().rev().take(MAX_LOOKBACK) {
        let r = record::decode(s)?;
        let ok = matches!(r.info.status, Status::Deployed | Status::Superseded);
        if ok && r.chart.app_version() == Some(version) {
            target = Some(r);
            break;
        }
    }
    let Some(to) = target else { return Ok(false) };
    let (at, secs) = now();
    let mut copy = to.clone();
    copy.revision = newest + 1;
    copy.info.status = Status::Deployed;
    copy.info.description = format!("Rollback to {}", to.revision);
    copy.info.last_deployed = Some(at);
    cluster
        .create(&marked(record::encode(&copy, Stamp::Created(secs))))
        .await?
        .ok_or_else(|| Error::Held {
            namespace: namespace.to_string(),
            name: name.to_string(),
            revision: copy.revision,
        })?;
    for s in &history.secrets {
        if s["metadata"]["labels"]["status"] == Status::Deployed.as_str() {
            let mut r = record::decode(s)?;
            r.info.status = Status::Superseded;
            rewrite(cluster, s, &r, secs).await?;
        }
    }
    Ok(true)
}
