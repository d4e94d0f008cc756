//! Helm as the installer meshup upgrades for: what the user set is the last deployed
//! revision's `config` of each release, kept under this run's values (Helm's
//! `--reset-then-reuse-values`); what meshup applies carries Helm's release annotations
//! and is applied under Helm's field manager; Helm's records are written as `helm upgrade`
//! writes them (`ledger`).

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::base::object::Rendered;
use crate::cluster::kube::Kube;
use crate::installed::helm::ledger::{self, Next};
use crate::installed::helm::releases::{self, RELEASE_NAME, RELEASE_NAMESPACE};
use crate::installed::installer::{Change, End, Installer, Previous};
use crate::installed::state::{InstallMethod, Installed};
use crate::release::discovery::Discovery;
use crate::release::source::Source;

/// The field manager Helm applies under (server-side, Helm 4; its client-side patches
/// are recorded under the same name).
pub const FIELD_MANAGER: &str = "helm";

/// The label Helm sets on everything it applies.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "Helm");

pub struct Helm;

#[async_trait]
impl Installer for Helm {
    fn name(&self) -> &'static str {
        "helm"
    }

    /// Helm's installs are found by `discover` (its annotations, labels and records).
    async fn detect(
        &self,
        _cluster: &dyn Kube,
        _discovery: &Discovery,
        _namespace: &str,
        _deployments: &[Value],
    ) -> anyhow::Result<Option<InstallMethod>> {
        Ok(None)
    }

    /// The last deployed revision of each release the target renders: its `config` per
    /// release (kept, as `--reset-then-reuse-values` keeps it) and its manifest (what a
    /// run may prune); the installed release's chart defaults from its charts beside the
    /// target's, when they are at hand.
    fn previous(
        &self,
        installed: &Installed,
        target: &dyn Source,
    ) -> anyhow::Result<Option<Previous>> {
        let components: Vec<&str> = target
            .facts()
            .components
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut overlay = Map::new();
        let mut objects = Vec::new();
        for r in of_target(installed, &components) {
            let Some(d) = &r.deployed else { continue };
            overlay.insert(r.name.clone(), Value::Object(d.config.clone()));
            objects.extend(crate::release::charts::documents(
                &r.name,
                &r.namespace,
                &d.manifest,
            )?);
        }
        if overlay.is_empty() {
            return Ok(None);
        }
        let version = installed.version().map(str::to_string);
        let profile_defaults = version
            .as_deref()
            .and_then(|v| target.release_of(v))
            .and_then(|s| s.profile(s.default_profile()).cloned());
        let overlay = Value::Object(overlay);
        Ok(Some(Previous {
            version,
            profile: target.default_profile().to_string(),
            profile_defaults,
            values: Some(overlay.clone()),
            overlay,
            manifest: Some(Rendered { objects }),
            keeps_values: true,
        }))
    }

    /// Every object of a Helm release's component is marked as Helm marks what it applies.
    fn stamp(&self, installed: &Installed, rendered: &mut Rendered) {
        for o in &mut rendered.objects {
            let Some(r) = installed
                .helm
                .releases
                .iter()
                .find(|r| r.name == o.component)
            else {
                continue;
            };
            let meta = &mut o.value["metadata"];
            meta["annotations"][RELEASE_NAME] = Value::String(r.name.clone());
            meta["annotations"][RELEASE_NAMESPACE] = Value::String(r.namespace.clone());
            meta["labels"][MANAGED_BY.0] = Value::String(MANAGED_BY.1.into());
        }
    }

    /// Revision N+1 `pending-upgrade` of each release the run applies objects of.
    async fn begin(
        &self,
        cluster: &dyn Kube,
        installed: &Installed,
        change: &Change<'_>,
    ) -> anyhow::Result<()> {
        // A pending revision a killed run of meshup's left: that run is over. Settling it
        // changes only its status: the newest revision and the last deployed one, which the
        // hold starts from, are as `installed` read them (and if another writer moved them
        // since, the hold's Create refuses).
        ledger::settle(
            cluster,
            End::Failed {
                message: "unfinished; a later run went on from it",
            },
            0,
        )
        .await?;
        let mut next = Vec::new();
        for r in &installed.helm.releases {
            let objects: Vec<_> = change
                .rendered
                .objects
                .iter()
                .filter(|o| o.component == r.name)
                .collect();
            if objects.is_empty() {
                continue;
            }
            let chart = change.source.chart_record(&r.name)?.unwrap_or(Value::Null);
            let config = change.overlay[&r.name]
                .as_object()
                .cloned()
                .unwrap_or_default();
            next.push(Next {
                release: r,
                chart,
                config,
                objects,
            });
        }
        ledger::hold(cluster, &next).await
    }

    async fn rolled_back(
        &self,
        cluster: &dyn Kube,
        objects: &[&Value],
        version: &str,
        history_max: usize,
    ) -> anyhow::Result<Vec<String>> {
        ledger::rolled_back(cluster, objects, version, history_max).await
    }

    async fn settle(
        &self,
        cluster: &dyn Kube,
        end: End<'_>,
        history_max: usize,
    ) -> anyhow::Result<bool> {
        ledger::settle(cluster, end, history_max).await
    }
}

/// The releases of the install that the target renders a component of.
fn of_target<'a>(
    installed: &'a Installed,
    components: &'a [&str],
) -> impl Iterator<Item = &'a releases::Release> {
    installed
        .helm
        .releases
        .iter()
        .filter(|r| components.contains(&r.name.as_str()))
}

/// The field manager an object is applied under: Helm's for an object of a Helm release
/// (its annotation names one), so that Helm's next server-side upgrade meets no conflict.
pub fn field_manager(object: &Value) -> Option<&'static str> {
    object["metadata"]["annotations"][RELEASE_NAME]
        .is_string()
        .then_some(FIELD_MANAGER)
}
