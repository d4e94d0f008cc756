//! `meshup history`: every recorded revision, newest last.

use serde::Serialize;

use super::{Env, default_namespace, product};

pub struct ListHistory {
    pub namespace: Option<String>,
}

/// One recorded revision as `meshup history` shows it.
#[derive(Debug, Serialize)]
pub struct Row {
    pub revision: u32,
    pub updated: String,
    pub action: String,
    pub version: String,
    pub digest: String,
    pub status: String,
    pub description: String,
    /// Overridden checks and replaced builtin policies, as recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<String>,
}

/// The releases recorded in one namespace, oldest first.
#[derive(Debug)]
pub struct Report {
    pub namespace: String,
    pub releases: Vec<Row>,
}

impl ListHistory {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Report> {
        let conn = env.connect().await?;
        let ns = self.namespace.as_deref().unwrap_or(default_namespace());
        let releases = env.history(&conn, ns, product()).all().await?;
        let releases = releases
            .iter()
            .map(|r| Row {
                revision: r.revision,
                updated: r.finished.clone().unwrap_or_else(|| r.started.clone()),
                action: r.action.to_string(),
                version: r.version.clone(),
                digest: r.digest.chars().take(12).collect(),
                status: r.status.to_string(),
                description: r.description.clone(),
                overridden: r.overridden.clone(),
            })
            .collect();
        Ok(Report {
            namespace: ns.to_string(),
            releases,
        })
    }
}
