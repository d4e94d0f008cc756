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
/// the release annotations, which Helm adds when it applies and never stores. Each object
/// is written as JSON, which is YAML to Helm too: Helm reads YAML 1.1, where a plain `yes`
/// or `on` is a boolean, so YAML written by a YAML 1.2 writer (which leaves such strings
/// unquoted) would come back to a `helm rollback` with its strings turned into booleans.
pub fn manifest(chart: &str, objects: &[&Object]) -> String {
    let mut out = String::new();
    for o in objects {
        let mut value = o.value.clone();
        // `pointer_mut`, not `value["metadata"]["annotations"]`: indexing a `&mut Value` would
        // add `annotations: null` to an object that has none.
        if let Some(a) = value
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
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
            "---\n# Source: {chart}/templates/{file}\n{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::tests::fake::FakeCluster;
    use crate::installed::helm::releases::{Named, read};
    use serde_json::json;

    const REAL: &str = include_str!("testdata/istiod-helm-v4.3.2.json");

    /// The real Helm 4.3.2 records of istiod in a fake cluster: revisions 1-3, 3 deployed
    /// (the fixture's revision 4, a helm run killed while pending, left out).
    fn cluster() -> FakeCluster {
        let fake = FakeCluster::default();
        let list: Value = serde_json::from_str(REAL).unwrap();
        for s in list["items"].as_array().unwrap() {
            if record::revision_of(s) != Some(4) {
                fake.insert(s.clone());
            }
        }
        fake
    }

    /// Each revision's (status label, JSON status, description), by revision.
    fn statuses(fake: &FakeCluster) -> Vec<(u32, String, String, String)> {
        let mut out: Vec<_> = fake
            .contents()
            .values()
            .filter(|s| s["type"] == record::SECRET_TYPE)
            .map(|s| {
                let r = record::decode(s).unwrap();
                (
                    r.revision,
                    s["metadata"]["labels"]["status"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    r.info.status.as_str().to_string(),
                    r.info.description.clone(),
                )
            })
            .collect();
        out.sort();
        out
    }

    async fn hold_istiod(fake: &FakeCluster) -> anyhow::Result<()> {
        let found = read(fake, &Named::new()).await.unwrap();
        let istiod = found.releases.iter().find(|r| r.name == "istiod").unwrap();
        let next = Next {
            release: istiod,
            chart: json!({"metadata": {"name": "istiod", "version": "1.31.0", "appVersion": "1.31.0"}}),
            config: json!({"pilot": {"env": {"X": "1"}}})
                .as_object()
                .unwrap()
                .clone(),
            objects: vec![],
        };
        hold(fake, &[next]).await
    }

    #[tokio::test]
    async fn a_hold_is_helms_lock_and_a_verified_run_deploys_it() {
        let fake = cluster();
        let before = statuses(&fake);
        let newest = before.last().unwrap().0;
        hold_istiod(&fake).await.unwrap();
        let held = statuses(&fake);
        assert_eq!(
            held.last().unwrap(),
            &(
                newest + 1,
                "pending-upgrade".into(),
                "pending-upgrade".into(),
                "Preparing upgrade".into()
            )
        );
        assert!(settle(&fake, End::Deployed, 0).await.unwrap());
        let done = statuses(&fake);
        let deployed: Vec<u32> = done
            .iter()
            .filter(|s| s.1 == "deployed")
            .map(|s| s.0)
            .collect();
        assert_eq!(deployed, vec![newest + 1], "{done:?}");
        assert_eq!(done[done.len() - 1].3, "Upgrade complete");
        assert_eq!(done[done.len() - 2].1, "superseded");
        assert!(
            done.iter().all(|s| s.1 == s.2),
            "labels and JSON agree: {done:?}"
        );
        let config = record::decode(
            &fake
                .object(
                    "Secret",
                    Some("istio-system"),
                    &record::secret_name("istiod", newest + 1),
                )
                .unwrap(),
        )
        .unwrap()
        .config;
        assert_eq!(Value::Object(config), json!({"pilot": {"env": {"X": "1"}}}));
    }

    #[tokio::test]
    async fn a_restore_leaves_failed_and_a_rollback_copy_and_history_is_trimmed() {
        let fake = cluster();
        let newest = statuses(&fake).last().unwrap().0;
        hold_istiod(&fake).await.unwrap();
        settle(
            &fake,
            End::Restored {
                failure: "istiod never became ready",
            },
            3,
        )
        .await
        .unwrap();
        let done = statuses(&fake);
        assert_eq!(done.len(), 3, "trimmed to --history-max: {done:?}");
        let tail: Vec<(u32, &str, &str)> = done
            .iter()
            .map(|s| (s.0, s.1.as_str(), s.3.as_str()))
            .collect();
        assert_eq!(tail[1].0, newest + 1);
        assert_eq!(tail[1].1, "failed");
        assert!(tail[1].2.contains("never became ready"), "{tail:?}");
        assert_eq!(
            tail[2],
            (
                newest + 2,
                "deployed",
                format!("Rollback to {newest}").as_str()
            )
        );
        assert_eq!(tail[0], (newest, "superseded", tail[0].2));
    }

    #[tokio::test]
    async fn a_hold_on_a_revision_someone_else_wrote_is_refused_and_nothing_stays() {
        let fake = cluster();
        let newest = statuses(&fake).last().unwrap().0;
        // Another writer created N+1 after meshup read the release.
        let found = read(&fake, &Named::new()).await.unwrap();
        let istiod = found
            .releases
            .iter()
            .find(|r| r.name == "istiod")
            .unwrap()
            .clone();
        let mut theirs = (**istiod.deployed.as_ref().unwrap()).clone();
        theirs.revision = newest + 1;
        theirs.info.status = Status::PendingUpgrade;
        fake.insert(record::encode(&theirs, Stamp::Created(1)));
        let next = Next {
            release: &istiod,
            chart: json!({}),
            config: Map::new(),
            objects: vec![],
        };
        let err = hold(&fake, &[next]).await.unwrap_err();
        assert!(
            err.to_string().contains("another `helm` or meshup run"),
            "{err}"
        );
        // Theirs is not meshup's: settling leaves it alone.
        assert!(!settle(&fake, End::Deployed, 0).await.unwrap());
    }

    #[test]
    fn the_stored_manifest_has_no_release_annotations() {
        let o = Object {
            component: "istiod".into(),
            source: "istiod/deployment.yaml".into(),
            value: json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x", "annotations": {RELEASE_NAME: "istiod", RELEASE_NAMESPACE: "istio-system"}}}),
        };
        let m = manifest("istiod", &[&o]);
        assert!(
            m.starts_with("---\n# Source: istiod/templates/deployment.yaml\n"),
            "{m}"
        );
        assert!(
            !m.contains("meta.helm.sh") && !m.contains("annotations"),
            "{m}"
        );
        // A string YAML 1.1 reads as a boolean stays a string (quoted, as JSON quotes it).
        let yes = Object {
            value: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "data": {"a": "yes", "b": "on"}}),
            ..o
        };
        let m = manifest("istiod", &[&yes]);
        assert!(
            m.contains(r#""a": "yes""#) && m.contains(r#""b": "on""#),
            "{m}"
        );
        let doc = m.split_once(".yaml\n").unwrap().1;
        assert_eq!(serde_json::from_str::<Value>(doc).unwrap(), yes.value);
    }
}
