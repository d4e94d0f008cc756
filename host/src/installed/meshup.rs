//! meshup as the installer: its history records (`installed::history`) hold each run's
//! inputs, merged values and exact manifest.

use async_trait::async_trait;
use serde_json::Value;

use crate::base::object::Rendered;
use crate::cluster::kube::Kube;
use crate::installed::history::Release;
use crate::installed::installer::{Installer, Previous};
use crate::installed::state::{InstallMethod, Installed};
use crate::release::discovery::Discovery;
use crate::release::source::Source;

pub struct Meshup;

#[async_trait]
impl Installer for Meshup {
    fn name(&self) -> &'static str {
        "meshup"
    }

    /// meshup's installs are found by their history, which `state::read` reads first.
    async fn detect(
        &self,
        _cluster: &dyn Kube,
        _discovery: &Discovery,
        _namespace: &str,
        _deployments: &[Value],
    ) -> anyhow::Result<Option<InstallMethod>> {
        Ok(None)
    }

    fn previous(&self, installed: &Installed, _: &dyn Source) -> anyhow::Result<Option<Previous>> {
        let Some(r) = &installed.release else {
            return Ok(None);
        };
        from_release(r, installed.version().map(str::to_string)).map(Some)
    }
}

/// A recorded release as the previous one. Its manifest says what a run may prune, so an
/// unreadable one is an error, not a silent "nothing to prune".
pub fn from_release(r: &Release, running: Option<String>) -> anyhow::Result<Previous> {
    let manifest = Rendered::from_manifest(&r.manifest).map_err(|e| {
        anyhow::anyhow!(
            "the manifest recorded in revision {} is unreadable ({e:#}); see `meshup history`, or `meshup rollback --to N` to a readable revision",
            r.revision
        )
    })?;
    Ok(Previous {
        version: running.or_else(|| Some(r.version.clone())),
        profile: r.profile.clone(),
        profile_defaults: Some(r.profile_defaults.clone()),
        overlay: r.overlay.clone(),
        values: Some(r.values.clone()),
        manifest: Some(manifest),
        keeps_values: false,
    })
}
