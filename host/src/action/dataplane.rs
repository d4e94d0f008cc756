//! `meshup dataplane status | restart`: workloads whose sidecars do not match the
//! control plane, and rolling restarts that re-inject them.

use std::time::Duration;

use super::{Env, default_namespace};
use crate::cluster::client::Cluster;
use crate::engine::dataplane::{self, Report, RestartOptions, RestartReport};
use crate::engine::progress::{Event, Progress};
use crate::release::discovery::Discovery;

pub struct DataplaneStatus {
    pub namespace: Option<String>,
    /// How the control plane and the sidecars are found (no bundle is named: the CLI
    /// gives the newest shipped bundle's, `shipped::newest`).
    pub discovery: Discovery,
}

pub struct DataplaneRestart {
    pub control_plane_namespace: Option<String>,
    pub namespaces: Vec<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub dry_run: bool,
    /// As for `DataplaneStatus`.
    pub discovery: Discovery,
}

/// What a restart did (or, in a dry run, would do).
#[derive(Debug)]
pub struct Restarted {
    pub dry_run: bool,
    pub outcome: RestartReport,
}

async fn read(env: &Env, discovery: &Discovery, ns: &str) -> anyhow::Result<(Cluster, Report)> {
    let cluster = env.cluster().await?;
    let installed = crate::installed::discover::read_running(&cluster, discovery, ns).await?;
    let version = installed.version().map(str::to_string);
    let report = dataplane::report(&cluster, discovery, version, ns).await?;
    Ok((cluster, report))
}

impl DataplaneStatus {
    /// Proxy versions per workload, against the control plane's version.
    pub async fn run(&self, env: &Env) -> anyhow::Result<Report> {
        let ns = self.namespace.as_deref().unwrap_or(default_namespace());
        Ok(read(env, &self.discovery, ns).await?.1)
    }
}

impl DataplaneRestart {
    /// Restart the outdated workloads, saying each one as it finishes.
    pub async fn run(&self, env: &Env, progress: &dyn Progress) -> anyhow::Result<Restarted> {
        let ns = self
            .control_plane_namespace
            .as_deref()
            .unwrap_or(default_namespace());
        let (cluster, report) = read(env, &self.discovery, ns).await?;
        let opts = RestartOptions {
            namespaces: self.namespaces.clone(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            dry_run: self.dry_run,
        };
        let outcome = dataplane::restart(&cluster, &report, &opts, |workload, r| {
            progress.event(Event::Restarted {
                workload,
                result: r.as_ref().copied().map_err(String::as_str),
            })
        })
        .await?;
        Ok(Restarted {
            dry_run: self.dry_run,
            outcome,
        })
    }
}
