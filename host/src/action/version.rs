//! `meshup version`: this client (its version, the WIT package its policies speak, the
//! sha256 of each builtin policy) and, unless `--client`, the control plane that runs on
//! the cluster, as `kubectl version` pairs client and server.

use serde::Serialize;

use super::{Env, default_namespace};
use crate::release::discovery::Discovery;

pub struct Version {
    /// Only this client: no cluster is asked.
    pub client_only: bool,
    /// How the control plane is found (the newest shipped bundle's, as for `status`).
    pub discovery: Discovery,
}

#[derive(Debug, Serialize)]
pub struct Policy {
    pub name: String,
    pub sha256: String,
}

/// What `meshup version` found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub client: String,
    pub wit: String,
    pub builtin_policies: Vec<Policy>,
    /// The in-place control plane's version (`None`: none installed, or not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
}

impl Version {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Report> {
        let mut report = Report {
            client: env!("CARGO_PKG_VERSION").to_string(),
            wit: crate::base::wit::PACKAGE.to_string(),
            builtin_policies: crate::policy::builtin::names()
                .map(|name| Policy {
                    name: name.to_string(),
                    sha256: crate::policy::cache::sha256_hex(
                        crate::policy::builtin::get(name).unwrap_or_default(),
                    ),
                })
                .collect(),
            control_plane: None,
            kubernetes: None,
        };
        if self.client_only {
            return Ok(report);
        }
        let conn = env.connect().await?;
        let installed = crate::installed::discover::read_running(
            &*conn.kube,
            &self.discovery,
            default_namespace(),
        )
        .await?;
        report.kubernetes = Some(installed.kubernetes_version.clone());
        report.control_plane = installed.version().map(str::to_string);
        Ok(report)
    }
}
