//! `Installer`: who installed what runs, and what its records say.
//!
//! An installer is detected from what it leaves in the cluster, tells what the user set
//! last time (`Previous`), and after a verified run brings its own record up to date, so
//! the user can go back to it at any time. meshup's history is the run journal (with the
//! captures that make a restore possible) for every installer; the installer's record is
//! kept beside it. To add an installer: one file implementing this trait, and its place in
//! `installers::owner` and `installers::all`.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::base::object::Rendered;
use crate::cluster::kube::Kube;
use crate::installed::state::{InstallMethod, Installed};
use crate::release::discovery::Discovery;
use crate::release::source::{Facts, Source};

/// The previous release's inputs, as far as they are known.
#[derive(Debug, Clone, Serialize)]
pub struct Previous {
    pub version: Option<String>,
    pub profile: String,
    /// The installed release's expanded profile (`None`: not known, and so neither is what
    /// the user set).
    pub profile_defaults: Option<Value>,
    pub overlay: Value,
    pub values: Option<Value>,
    #[serde(skip)]
    pub manifest: Option<Rendered>,
}

#[async_trait]
pub trait Installer: Send + Sync {
    /// Its name in plans, JSON and the policy context (`InstallMethod::name`).
    fn name(&self) -> &'static str;

    /// Whether it installed the control plane whose Deployments are `deployments`: the
    /// method, with what its records hold; `None` when it did not.
    async fn detect(
        &self,
        cluster: &dyn Kube,
        discovery: &Discovery,
        namespace: &str,
        deployments: &[Value],
    ) -> anyhow::Result<Option<InstallMethod>>;

    /// What the user set last time and what ran, as its records tell (`target`: the
    /// release this run goes to, whose source finds the installed one).
    fn previous(
        &self,
        installed: &Installed,
        target: &dyn Source,
    ) -> anyhow::Result<Option<Previous>>;

    /// After a verified run: bring its own record up to date with what now runs (`spec`:
    /// the spec as the installer records it). Whether it had a record to write; an
    /// installer whose only record is meshup's history has none.
    async fn record(
        &self,
        _cluster: &dyn Kube,
        _facts: &Facts,
        _profile: &str,
        _spec: &Value,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
}
