//! Release history: one record per revision, stored in the cluster like Helm's
//! Secret driver (gzip-compressed JSON in a Secret of type `meshup.dev/release.v1`).
//!
//! Storage sits behind the small `Driver` trait so the actions can be tested with
//! the in-memory driver and run against the cluster with the Secret one.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SECRET_TYPE: &str = "meshup.dev/release.v1";
pub const OWNER_LABEL: &str = "owner";
/// Records larger than this (compressed) are refused rather than breaking the 1 MiB Secret limit.
pub const MAX_RECORD_BYTES: usize = 900 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Being applied (a crashed run leaves this behind).
    Pending,
    /// The live release.
    Deployed,
    /// An older release replaced by a later one.
    Superseded,
    /// Failed and not restored.
    Failed,
    /// Failed, then the previous release was restored.
    RolledBack,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&kebab(self))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Install,
    Upgrade,
    Downgrade,
    Reinstall,
    Rollback,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&kebab(self))
    }
}

/// An enum's serde name (`rolled-back`), so text output and JSON agree.
fn kebab(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// One revision of the installed control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub revision: u32,
    pub action: Action,
    pub status: Status,
    /// Bundle name and version (`istio`, `1.8.6`) and the bundle's sha256.
    pub bundle: String,
    pub version: String,
    pub digest: String,
    pub profile: String,
    /// The profile's defaults at the time (what `profile-defaults` compares next time).
    pub profile_defaults: Value,
    /// The user's `-f`/`--set` values (what a later run must repeat).
    pub overlay: Value,
    /// Profile defaults merged with the overlay.
    pub values: Value,
    /// The rendered manifest, exactly as applied.
    pub manifest: String,
    /// The bundle's components (apply order, readiness): enough to re-apply without the bundle.
    #[serde(default)]
    pub components: Vec<crate::release::bundle::Component>,
    pub namespace: String,
    pub description: String,
    /// Checks the user overrode (`--force`, `--ignore CODE`), kept for the record.
    #[serde(default)]
    pub overridden: Vec<String>,
    pub started: String,
    #[serde(default)]
    pub finished: Option<String>,
    /// The objects this run changes, as they were before it (written before its first
    /// change): what a restore puts back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<crate::installed::capture::Snapshot>,
}

impl Release {
    /// A run that ended without the cluster fully on one release: interrupted (`pending`)
    /// or failed and not restored.
    pub fn unfinished(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Failed)
    }
}

/// The records that say what runs now.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The newest `deployed` release.
    pub deployed: Option<Release>,
    /// The newest record, if it is newer than `deployed` and unfinished: the cluster may be
    /// between two versions, and its capture says how it was before.
    pub open: Option<Release>,
}

/// Where release records live.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    async fn list(&self) -> anyhow::Result<Vec<Release>>;
    async fn create(&self, r: &Release) -> anyhow::Result<()>;
    async fn update(&self, r: &Release) -> anyhow::Result<()>;
    async fn delete(&self, revision: u32) -> anyhow::Result<()>;
}

/// Releases in memory, for tests. Records go through the same encoding and size bound as
/// the Secret driver, so a test sees what the cluster would keep.
#[derive(Default)]
pub struct Memory(std::sync::Mutex<BTreeMap<u32, Release>>);

#[async_trait::async_trait]
impl Driver for Memory {
    async fn list(&self) -> anyhow::Result<Vec<Release>> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect())
    }
    async fn create(&self, r: &Release) -> anyhow::Result<()> {
        let stored = decode(&encode(r)?)?;
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.revision, stored);
        Ok(())
    }
    async fn update(&self, r: &Release) -> anyhow::Result<()> {
        self.create(r).await
    }
    async fn delete(&self, revision: u32) -> anyhow::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&revision);
        Ok(())
    }
}

/// Releases as Secrets `meshup.<bundle>.v<N>` in the control-plane namespace.
pub struct Secrets {
    api: Api<Secret>,
    bundle: String,
}

impl Secrets {
    pub fn new(client: kube::Client, namespace: &str, bundle: &str) -> Self {
        Secrets {
            api: Api::namespaced(client, namespace),
            bundle: bundle.to_string(),
        }
    }

    fn name(&self, revision: u32) -> String {
        format!("meshup.{}.v{revision}", self.bundle)
    }

    fn to_secret(&self, r: &Release) -> anyhow::Result<Secret> {
        let data = encode(r)?;
        let labels = BTreeMap::from([
            (OWNER_LABEL.to_string(), "meshup".to_string()),
            ("name".to_string(), self.bundle.clone()),
            ("version".to_string(), r.revision.to_string()),
            ("status".to_string(), r.status.to_string()),
        ]);
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(self.name(r.revision)),
                labels: Some(labels),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(BTreeMap::from([("release".to_string(), ByteString(data))])),
            ..Default::default()
        })
    }
}

#[async_trait::async_trait]
impl Driver for Secrets {
    async fn list(&self) -> anyhow::Result<Vec<Release>> {
        let lp =
            ListParams::default().labels(&format!("{OWNER_LABEL}=meshup,name={}", self.bundle));
        let secrets = self
            .api
            .list(&lp)
            .await
            .context("reading release history (Secrets)")?;
        let mut out = Vec::new();
        for s in secrets.items {
            let name = s.metadata.name.clone().unwrap_or_default();
            let bytes = s
                .data
                .as_ref()
                .and_then(|d| d.get("release"))
                .map(|b| b.0.clone())
                .unwrap_or_default();
            out.push(
                decode(&bytes).with_context(|| format!("history record {name} is unreadable"))?,
            );
        }
        out.sort_by_key(|r| r.revision);
        Ok(out)
    }
    async fn create(&self, r: &Release) -> anyhow::Result<()> {
        self.api
            .create(&PostParams::default(), &self.to_secret(r)?)
            .await
            .with_context(|| format!("recording revision {}", r.revision))?;
        Ok(())
    }
    async fn update(&self, r: &Release) -> anyhow::Result<()> {
        let secret = self.to_secret(r)?;
        let pp = kube::api::PatchParams::apply(crate::cluster::client::FIELD_MANAGER).force();
        self.api
            .patch(
                &self.name(r.revision),
                &pp,
                &kube::api::Patch::Apply(&secret),
            )
            .await
            .with_context(|| format!("updating revision {}", r.revision))?;
        Ok(())
    }
    async fn delete(&self, revision: u32) -> anyhow::Result<()> {
        match self
            .api
            .delete(&self.name(revision), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e).with_context(|| format!("pruning revision {revision}")),
        }
    }
}

fn encode(r: &Release) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(r)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json)?;
    let out = gz.finish()?;
    if out.len() > MAX_RECORD_BYTES {
        anyhow::bail!(
            "revision {} is {} KiB compressed, over the {} KiB a record may take",
            r.revision,
            out.len() / 1024,
            MAX_RECORD_BYTES / 1024
        );
    }
    Ok(out)
}

fn decode(bytes: &[u8]) -> anyhow::Result<Release> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut json)?;
    Ok(serde_json::from_slice(&json)?)
}

/// Whether reading history failed because the API server refused the caller (403: a user
/// who may not read Secrets there, such as one bound to the built-in `view` role).
pub fn is_forbidden(e: &anyhow::Error) -> bool {
    e.chain().any(
        |c| matches!(c.downcast_ref::<kube::Error>(), Some(kube::Error::Api(s)) if s.code == 403),
    )
}

/// The history operations the actions use, over any driver.
pub struct History {
    pub driver: std::sync::Arc<dyn Driver>,
    pub max: usize,
}

impl History {
    pub fn new(driver: std::sync::Arc<dyn Driver>, max: usize) -> Self {
        History {
            driver,
            max: max.max(1),
        }
    }

    pub async fn all(&self) -> anyhow::Result<Vec<Release>> {
        self.driver.list().await
    }

    /// The release currently live and an unfinished run on top of it, from one read.
    pub async fn live(&self) -> anyhow::Result<Live> {
        Ok(live(&self.all().await?))
    }

    /// The release currently live.
    pub async fn deployed(&self) -> anyhow::Result<Option<Release>> {
        Ok(self.live().await?.deployed)
    }

    pub async fn next_revision(&self) -> anyhow::Result<u32> {
        Ok(self
            .all()
            .await?
            .last()
            .map(|r| r.revision + 1)
            .unwrap_or(1))
    }

    /// Record a new release as pending (before anything is applied).
    pub async fn begin(&self, mut r: Release) -> anyhow::Result<Release> {
        r.revision = self.next_revision().await?;
        r.status = Status::Pending;
        r.started = now();
        self.driver.create(&r).await?;
        Ok(r)
    }

    /// Record the final status of `r`; a deployed release supersedes every older deployed one,
    /// and revisions past `max` are pruned (oldest first).
    pub async fn finish(
        &self,
        r: &mut Release,
        status: Status,
        description: String,
    ) -> anyhow::Result<()> {
        r.status = status;
        r.description = description;
        r.finished = Some(now());
        self.driver.update(r).await?;
        let all = self.all().await?;
        if status == Status::Deployed {
            for mut old in all
                .iter()
                .filter(|o| o.revision != r.revision && o.status == Status::Deployed)
                .cloned()
            {
                old.status = Status::Superseded;
                self.driver.update(&old).await?;
            }
        }
        if all.len() > self.max {
            for old in &all[..all.len() - self.max] {
                self.driver.delete(old.revision).await?;
            }
        }
        Ok(())
    }
}

/// `Live` from records sorted by revision.
pub fn live(all: &[Release]) -> Live {
    let deployed = all
        .iter()
        .rev()
        .find(|r| r.status == Status::Deployed)
        .cloned();
    let open = all
        .last()
        .filter(|r| r.unfinished())
        .filter(|r| deployed.as_ref().is_none_or(|d| r.revision > d.revision))
        .cloned();
    Live { deployed, open }
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: &str) -> Release {
        Release {
            revision: 0,
            action: Action::Install,
            status: Status::Pending,
            bundle: "istio".into(),
            version: version.into(),
            digest: "d".into(),
            profile: "default".into(),
            profile_defaults: Value::Null,
            overlay: serde_json::json!({}),
            values: serde_json::json!({}),
            manifest: "---\n".into(),
            components: vec![],
            namespace: "istio-system".into(),
            description: String::new(),
            overridden: vec![],
            started: String::new(),
            finished: None,
            captured: None,
        }
    }

    #[tokio::test]
    async fn deployed_supersedes_and_old_revisions_are_pruned() {
        let h = History::new(std::sync::Arc::new(Memory::default()), 3);
        for v in ["1.6.0", "1.7.0", "1.8.0", "1.9.0"] {
            let mut r = h.begin(release(v)).await.unwrap();
            h.finish(&mut r, Status::Deployed, format!("{v} done"))
                .await
                .unwrap();
        }
        let all = h.all().await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.revision).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(
            all.iter().filter(|r| r.status == Status::Deployed).count(),
            1
        );
        assert_eq!(h.deployed().await.unwrap().unwrap().version, "1.9.0");
    }

    #[tokio::test]
    async fn a_record_too_large_to_store_is_refused_and_nothing_is_stored() {
        let h = History::new(std::sync::Arc::new(Memory::default()), 3);
        let mut r = release("1.8.6");
        // Incompressible: a capture of objects full of random data.
        let mut seed = 1u64;
        let noise: String = (0..2_000_000)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + (seed >> 59) as u8)
            })
            .collect();
        r.captured = Some(crate::installed::capture::Snapshot {
            version: Some("1.7.8".into()),
            objects: vec![crate::installed::capture::Captured {
                key: crate::base::object::ObjectKey {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("istio-system".into()),
                    name: "big".into(),
                },
                component: "istiod".into(),
                before: Some(serde_json::json!({"data": {"x": noise}})),
            }],
        });
        let err = h.begin(r).await.unwrap_err();
        assert!(err.to_string().contains("over the 900 KiB"), "{err}");
        assert!(h.all().await.unwrap().is_empty());
    }

    #[test]
    fn an_unfinished_run_newer_than_the_live_release_is_open() {
        let mut rs = Vec::new();
        for (rev, status) in [
            (1, Status::Superseded),
            (2, Status::Deployed),
            (3, Status::Failed),
        ] {
            let mut r = release("1.8.6");
            r.revision = rev;
            r.status = status;
            rs.push(r);
        }
        let l = live(&rs);
        assert_eq!(l.deployed.map(|r| r.revision), Some(2));
        assert_eq!(l.open.map(|r| r.revision), Some(3));
        rs[2].status = Status::RolledBack;
        assert!(live(&rs).open.is_none());
        // An istioctl install: nothing deployed by meshup, one interrupted run.
        rs.truncate(1);
        rs[0].status = Status::Pending;
        assert_eq!(live(&rs).open.map(|r| r.revision), Some(1));
    }

    #[test]
    fn records_round_trip_compressed() {
        let mut r = release("1.8.6");
        r.manifest = "apiVersion: v1\n".repeat(10_000);
        let bytes = encode(&r).unwrap();
        assert!(
            bytes.len() < r.manifest.len() / 20,
            "compressed to {} bytes",
            bytes.len()
        );
        assert_eq!(decode(&bytes).unwrap(), r);
    }
}
