//! The Helm releases of an Istio install, in any namespace: what `helm list -A` would show
//! of Istio's charts (`base`, `istiod`, `gateway`, whatever the releases are called).
//!
//! Two sources, as Helm itself knows them: its release records (Secrets labelled
//! `owner=helm`, listed across namespaces, `record` decodes them), and the
//! `meta.helm.sh/release-name|namespace` annotations Helm puts on every object it applies
//! (the control plane's Deployments name their release even when its chart is not called
//! `istiod`). A release is Istio's when the control plane names it, or when its chart is one
//! of Istio's (`ISTIO_CHARTS`, with `istio` among the chart's keywords, as every Istio chart
//! has).
//!
//! Bounded: at most `MAX_RECORDS` Secrets are listed and the newest record of at most
//! `MAX_RELEASES` releases is decoded (each within `record`'s own bounds); past a bound the
//! rest is left unread and a note says so. Only the newest revision of each release is
//! decoded; the last deployed one is found by its `status=deployed` label, as Helm's
//! `Deployed` query finds it. A record the control plane's own release cannot be read from
//! is an error naming the Secret; an unreadable record of another release is skipped with a
//! note, as `helm list` skips it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::base::text;
use crate::cluster::kube::Kube;
use crate::installed::helm::record::{self, ApplyMethod, OWNER, RecordError, Status};

/// The charts an Istio install is made of (Istio's documented Helm install).
pub const ISTIO_CHARTS: [&str; 3] = ["base", "istiod", "gateway"];
/// Helm records (every revision of every release in the cluster) listed at most.
pub const MAX_RECORDS: usize = 5000;
/// Releases whose newest record is decoded at most.
pub const MAX_RELEASES: usize = 500;

/// The annotations Helm sets on every object it applies.
pub const RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// One Helm release of the Istio install, as its newest revision says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    /// The chart's name (`istiod`), version and appVersion, from the newest revision.
    pub chart: String,
    pub chart_version: String,
    pub app_version: String,
    /// The newest revision (Helm's `Last`: what `helm upgrade` and `rollback` start from).
    pub revision: u32,
    pub status: Status,
    /// The last revision labelled `deployed` (Helm's `Deployed`), if any.
    pub last_deployed: Option<u32>,
    /// How Helm applied it (`ssa` for Helm 4 installs; `csa` for Helm 3's).
    pub apply_method: ApplyMethod,
    /// `info.description` of the newest revision ("Upgrade complete", "Preparing upgrade").
    pub description: String,
    /// `info.last_deployed` of the newest revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// The control-plane objects that name this release in their Helm annotations.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_by: Vec<String>,
    /// The newest revision is a pending one meshup wrote (its run's hold on the release),
    /// which the next meshup run finishes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending_by_meshup: bool,
    /// The last deployed revision, whole: what the user set (`config`) and what it applied
    /// (`manifest`), which the next upgrade starts from.
    #[serde(skip)]
    pub deployed: Option<Box<record::Release>>,
}

impl Release {
    /// `istiod-1.30.3`, as `helm list` prints the chart.
    pub fn chart_ref(&self) -> String {
        format!("{}-{}", self.chart, self.chart_version)
    }

    /// The command that resolves a pending newest revision (`None`: it is not pending).
    pub fn resolution(&self) -> Option<String> {
        let (name, ns) = (&self.name, &self.namespace);
        match self.status {
            Status::PendingInstall => Some(format!("helm uninstall {name} -n {ns}")),
            Status::PendingUpgrade | Status::PendingRollback => {
                let to = self
                    .last_deployed
                    .unwrap_or_else(|| self.revision.saturating_sub(1).max(1));
                Some(format!("helm rollback {name} {to} -n {ns}"))
            }
            _ => None,
        }
    }
}

/// What was found: the releases (by namespace and name), and notes about what was not read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Found {
    pub releases: Vec<Release>,
    /// Records left unread (a bound reached, a record of another release that cannot be
    /// read, no permission to list), and releases the control plane names that Helm has no
    /// record of.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Found {
    /// The release that Helm-annotated control-plane objects in `namespace` belong to, or
    /// else the `istiod` chart's release there.
    pub fn control_plane(&self, namespace: &str) -> Option<&Release> {
        self.releases
            .iter()
            .find(|r| !r.named_by.is_empty() && r.chart == "istiod")
            .or_else(|| {
                self.releases
                    .iter()
                    .find(|r| r.namespace == namespace && r.chart == "istiod")
            })
    }
}

/// A record of the Istio install's own release that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read Helm release {namespace}/{name} ({named_by}); nothing was changed: {cause}")]
pub struct Error {
    pub namespace: String,
    pub name: String,
    pub named_by: String,
    /// Part of the message, not a chained source, so the one error line names the Secret
    /// once.
    pub cause: RecordError,
}

/// A release the control plane's Helm annotations name: (namespace, name) → who names it.
pub type Named = BTreeMap<(String, String), Vec<String>>;

/// The releases Helm's annotations on `objects` name (`Kind namespace/name` for each).
pub fn named_by(objects: &[Value]) -> Named {
    let mut named = Named::new();
    for o in objects {
        let meta = &o["metadata"];
        let Some(release) = meta["annotations"][RELEASE_NAME].as_str() else {
            continue;
        };
        let object_ns = meta["namespace"].as_str().unwrap_or_default();
        let ns = meta["annotations"][RELEASE_NAMESPACE]
            .as_str()
            .unwrap_or(object_ns);
        let who = format!(
            "{} {}/{}",
            o["kind"].as_str().unwrap_or("object"),
            object_ns,
            meta["name"].as_str().unwrap_or("?")
        );
        named
            .entry((ns.to_string(), release.to_string()))
            .or_default()
            .push(text::truncate(text::escape(&who).into_owned(), 300));
    }
    named
}

/// The newest record of one release, and its last deployed revision, from the listing.
struct Newest {
    revision: u32,
    secret: Value,
    last_deployed: Option<u32>,
    /// The last deployed revision's record, when it is not the newest.
    deployed_secret: Value,
}

/// Read the Helm releases of the Istio install across namespaces (`named`: the releases its
/// control-plane objects name).
pub async fn read(cluster: &dyn Kube, named: &Named) -> anyhow::Result<Found> {
    let mut found = Found::default();
    let Some(newest) = list(cluster, &mut found.notes).await? else {
        return Ok(found);
    };
    // The releases the control plane names first, so a bound never leaves them out.
    let mut keys: Vec<&(String, String)> = newest.keys().collect();
    keys.sort_by_key(|k| !named.contains_key(*k));
    if keys.len() > MAX_RELEASES {
        found.notes.push(format!(
            "{} Helm releases in the cluster; only {MAX_RELEASES} were read (those the control \
             plane names first)",
            keys.len()
        ));
        keys.truncate(MAX_RELEASES);
    }
    for key in keys {
        let n = &newest[key];
        let names = named.get(key);
        let release = match record::decode(&n.secret) {
            Ok(r) => r,
            Err(source) => match names {
                Some(by) => {
                    return Err(Error {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        named_by: format!("named by {}", by.join(", ")),
                        cause: source,
                    }
                    .into());
                }
                None => {
                    found.notes.push(format!(
                        "skipped an unreadable record of another Helm release (as `helm list` \
                         does): {source}"
                    ));
                    continue;
                }
            },
        };
        let chart = release.chart.name().unwrap_or_default();
        let istio_chart = ISTIO_CHARTS.contains(&chart) && has_istio_keyword(&release.chart);
        if names.is_none() && !istio_chart {
            continue;
        }
        let deployed = match n.last_deployed {
            Some(d) if d == release.revision => Some(Box::new(release.clone())),
            Some(_) => Some(Box::new(record::decode(&n.deployed_secret).map_err(
                |cause| Error {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    named_by: "its last deployed revision".into(),
                    cause,
                },
            )?)),
            None => None,
        };
        found.releases.push(Release {
            name: release.name.clone(),
            namespace: key.0.clone(),
            chart: chart.to_string(),
            chart_version: release.chart.version().unwrap_or_default().to_string(),
            app_version: release.chart.app_version().unwrap_or_default().to_string(),
            revision: release.revision,
            status: release.info.status,
            last_deployed: n.last_deployed,
            apply_method: release.apply_method.unwrap_or(ApplyMethod::Csa),
            description: release.info.description.clone(),
            updated: release.info.last_deployed.clone(),
            named_by: names.cloned().unwrap_or_default(),
            pending_by_meshup: release.info.status.is_pending()
                && n.secret["metadata"]["annotations"][record::WRITTEN_BY] == record::MESHUP,
            deployed,
        });
    }
    for ((ns, name), by) in named {
        if !newest.contains_key(&(ns.clone(), name.clone())) {
            found.notes.push(format!(
                "{} name Helm release {ns}/{name}, but Helm has no record of it in {ns} \
                 (`helm history {name} -n {ns}` finds none)",
                by.join(", ")
            ));
        }
    }
    found
        .releases
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(found)
}

fn has_istio_keyword(chart: &record::Chart) -> bool {
    chart
        .metadata()
        .and_then(|m| m.get("keywords"))
        .and_then(Value::as_array)
        .is_some_and(|k| k.iter().any(|k| k == "istio"))
}

/// Every Helm record's metadata, paged and bounded, keeping only each release's newest
/// record whole. `None` when the cluster does not let this user list them (a note says so).
async fn list(
    cluster: &dyn Kube,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<BTreeMap<(String, String), Newest>>> {
    let selector = format!("owner={OWNER}");
    let mut newest: BTreeMap<(String, String), Newest> = BTreeMap::new();
    let (mut seen, mut page) = (0usize, None);
    loop {
        let p = match cluster
            .list_page("v1", "Secret", None, Some(&selector), page)
            .await
        {
            Ok(p) => p,
            Err(e) if e.status().is_some_and(|s| s.code == 403) => {
                notes.push(format!(
                    "Helm's release records were not read (listing Secrets labelled {selector} \
                     in every namespace is not allowed): {e}"
                ));
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        for secret in p.items {
            seen += 1;
            if seen > MAX_RECORDS {
                notes.push(format!(
                    "more than {MAX_RECORDS} Helm records in the cluster; only the first \
                     {MAX_RECORDS} were read"
                ));
                return Ok(Some(newest));
            }
            keep(&mut newest, secret);
        }
        match p.next {
            Some(next) => page = Some(next),
            None => return Ok(Some(newest)),
        }
    }
}

/// Note one record: its release (by the Secret's name, as Helm names it, else its `name`
/// label) and revision, keeping it whole if it is that release's newest so far.
fn keep(newest: &mut BTreeMap<(String, String), Newest>, secret: Value) {
    let meta = &secret["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or_default().to_string();
    let labels = &meta["labels"];
    let label_version = labels["version"].as_str().and_then(|v| v.parse().ok());
    let (name, revision) = match meta["name"].as_str().and_then(record::parse_secret_name) {
        Some((name, revision)) => (name.to_string(), revision),
        None => match labels["name"].as_str() {
            Some(name) => (name.to_string(), label_version.unwrap_or(0)),
            None => return,
        },
    };
    let deployed = (labels["status"] == Status::Deployed.as_str()).then_some(revision);
    let entry = newest.entry((ns, name)).or_insert_with(|| Newest {
        revision: 0,
        secret: Value::Null,
        last_deployed: None,
        deployed_secret: Value::Null,
    });
    if deployed.is_some() && deployed > entry.last_deployed {
        entry.last_deployed = deployed;
        entry.deployed_secret = secret.clone();
    }
    if entry.secret.is_null() || revision > entry.revision {
        entry.revision = revision;
        entry.secret = secret;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installed::helm::record::{Stamp, decode, encode};
    use serde_json::json;

    const REAL: &str = include_str!("testdata/istiod-helm-v4.3.2.json");

    fn real() -> Vec<Value> {
        let list: Value = serde_json::from_str(REAL).unwrap();
        list["items"].as_array().unwrap().clone()
    }

    /// Revision `revision` of the real istiod release, re-made as release `name` of chart
    /// `chart` in `namespace` with `status`.
    fn made(name: &str, chart: &str, namespace: &str, revision: u32, status: Status) -> Value {
        let mut r = decode(&real()[2]).unwrap();
        r.name = name.into();
        r.namespace = namespace.into();
        r.revision = revision;
        r.info.status = status;
        r.chart.0["metadata"]["name"] = json!(chart);
        encode(&r, Stamp::Created(1_796_471_300))
    }

    fn by_keep(secrets: Vec<Value>) -> BTreeMap<(String, String), Newest> {
        let mut newest = BTreeMap::new();
        for s in secrets {
            keep(&mut newest, s);
        }
        newest
    }

    #[test]
    fn the_newest_revision_and_the_last_deployed_one() {
        let newest = by_keep(real());
        let n = &newest[&("istio-system".to_string(), "istiod".to_string())];
        assert_eq!((n.revision, n.last_deployed), (4, Some(3)));
        assert_eq!(
            decode(&n.secret).unwrap().info.status,
            Status::PendingUpgrade
        );
    }

    #[test]
    fn named_by_reads_helms_annotations() {
        let d = json!({"kind": "Deployment", "metadata": {"name": "istiod", "namespace": "istio-system",
            "annotations": {RELEASE_NAME: "cp", RELEASE_NAMESPACE: "mesh"}}});
        let plain = json!({"kind": "Deployment", "metadata": {"name": "x", "namespace": "a"}});
        let named = named_by(&[d, plain]);
        assert_eq!(
            named,
            Named::from([(
                ("mesh".to_string(), "cp".to_string()),
                vec!["Deployment istio-system/istiod".to_string()]
            )])
        );
    }

    #[test]
    fn resolutions_name_the_helm_command() {
        let r = |status, last_deployed| Release {
            name: "istiod".into(),
            namespace: "istio-system".into(),
            chart: "istiod".into(),
            chart_version: "1.30.3".into(),
            app_version: "1.30.3".into(),
            revision: 4,
            status,
            last_deployed,
            apply_method: ApplyMethod::Ssa,
            description: String::new(),
            updated: None,
            named_by: vec![],
            pending_by_meshup: false,
            deployed: None,
        };
        assert_eq!(
            r(Status::PendingUpgrade, Some(2)).resolution().unwrap(),
            "helm rollback istiod 2 -n istio-system"
        );
        assert_eq!(
            r(Status::PendingRollback, None).resolution().unwrap(),
            "helm rollback istiod 3 -n istio-system"
        );
        assert_eq!(
            r(Status::PendingInstall, None).resolution().unwrap(),
            "helm uninstall istiod -n istio-system"
        );
        assert_eq!(r(Status::Deployed, Some(4)).resolution(), None);
        assert_eq!(r(Status::Deployed, Some(4)).chart_ref(), "istiod-1.30.3");
    }

    #[test]
    fn istio_charts_are_recognised_by_name_and_keyword() {
        let s = made(
            "istio-ingress",
            "gateway",
            "istio-ingress",
            1,
            Status::Deployed,
        );
        let r = decode(&s).unwrap();
        assert!(ISTIO_CHARTS.contains(&r.chart.name().unwrap()) && has_istio_keyword(&r.chart));
        let mut other = r.clone();
        other.chart.0["metadata"]["keywords"] = json!(["nginx"]);
        assert!(!has_istio_keyword(&other.chart));
    }
}
