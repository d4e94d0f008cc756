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
    /// The installer's upgrade keeps what the user set (`overlay`) under this run's
    /// values, as Helm's `--reset-then-reuse-values` does; otherwise a value not given
    /// again reverts, and the plan says so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keeps_values: bool,
}

/// What a run applies, as an installer's own records need it.
pub struct Change<'a> {
    pub source: &'a dyn Source,
    /// The version it goes to.
    pub version: &'a str,
    /// What is applied, each object tagged with its component.
    pub rendered: &'a Rendered,
    /// The user's values per component as this run applies them (kept ones included).
    pub overlay: &'a Value,
}

/// How a run ended, read back from the cluster, for the installers' records.
#[derive(Debug, Clone, Copy)]
pub enum End<'a> {
    /// The target runs, verified.
    Deployed,
    /// It failed (`failure`) and the state before it was put back, verified.
    Restored { failure: &'a str },
    /// It failed and what runs is not the state before it (`message` says what is known),
    /// or it was left unfinished and a later run goes on from it.
    Failed { message: &'a str },
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

    /// Mark the rendered objects as the installer marks what it applies (Helm's release
    /// annotations), so that applying them keeps its ownership.
    fn stamp(&self, _installed: &Installed, _rendered: &mut Rendered) {}

    /// Before the first write of a run: take the installer's own hold on what the run
    /// changes (Helm's pending revision), so that the installer refuses to run beside it
    /// as it refuses to run beside itself. An error leaves nothing changed.
    async fn begin(
        &self,
        _cluster: &dyn Kube,
        _installed: &Installed,
        _change: &Change<'_>,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// After a run (or a rollback) ended as `end`: finish every hold a run of meshup's took
    /// (this one's, or one a killed run left), so the installer's records say what runs;
    /// at most `history_max` revisions are kept. Whether there was one.
    async fn settle(
        &self,
        _cluster: &dyn Kube,
        _end: End<'_>,
        _history_max: usize,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }

    /// After meshup re-applied a recorded revision of `version` (`meshup rollback`),
    /// verified: record it as the installer's own rollback would. The releases it could not
    /// record it for (no revision of that version in its records).
    async fn rolled_back(
        &self,
        _cluster: &dyn Kube,
        _objects: &[&Value],
        _version: &str,
        _history_max: usize,
    ) -> anyhow::Result<Vec<String>> {
        Ok(vec![])
    }

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
