//! `meshup history`: every recorded revision, newest last.

use serde::Serialize;

use super::{DEFAULT_NAMESPACE, Env, PRODUCT, print_json};
use crate::exit::Code;
use crate::ui::table;

pub struct ListHistory {
    pub namespace: Option<String>,
}

#[derive(Serialize)]
struct Row {
    revision: u32,
    updated: String,
    action: String,
    version: String,
    digest: String,
    status: String,
    description: String,
    /// Overridden checks and replaced builtin policies, as recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    overridden: Vec<String>,
}

impl ListHistory {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let conn = env.connect().await?;
        let ns = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let releases = env.history(&conn, ns, PRODUCT).all().await?;
        let rows: Vec<Row> = releases
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
        if env.ui.json() {
            print_json(&serde_json::json!({ "namespace": ns, "releases": rows }))?;
        } else if rows.is_empty() {
            env.ui.say(format!("no meshup releases in namespace {ns}"));
        } else {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.revision.to_string(),
                        r.updated.clone(),
                        r.action.clone(),
                        r.version.clone(),
                        r.digest.clone(),
                        r.status.clone(),
                        r.description.clone(),
                    ]
                })
                .collect();
            env.ui.say(table(
                &[
                    "REVISION",
                    "UPDATED",
                    "ACTION",
                    "VERSION",
                    "BUNDLE DIGEST",
                    "STATUS",
                    "DESCRIPTION",
                ],
                &cells,
            ));
        }
        Ok(Code::Ok)
    }
}
