//! The Helm releases of an install, as `status` and the plan show them: one row each, as
//! `helm list` would print it (every field came from the cluster, so each is escaped).

use crate::base::text;
use crate::cli::ui::table;
use crate::installed::helm::releases::Release;

/// The table with every line indented by `indent`.
pub fn indented(releases: &[Release], indent: &str) -> String {
    releases_table(releases)
        .lines()
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `NAMESPACE  RELEASE  CHART  APP VERSION  REVISION  STATUS  APPLY`, one row per release.
pub fn releases_table(releases: &[Release]) -> String {
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            let status = match (r.status.is_pending(), r.last_deployed) {
                (true, Some(to)) => format!("{} (last deployed: {to})", r.status),
                (true, None) => format!("{} (none deployed)", r.status),
                (false, _) => r.status.to_string(),
            };
            vec![
                text::one_line(&r.namespace),
                text::one_line(&r.name),
                text::one_line(&r.chart_ref()),
                text::one_line(&r.app_version),
                r.revision.to_string(),
                status,
                apply(r).to_string(),
            ]
        })
        .collect();
    table(
        &[
            "NAMESPACE",
            "HELM RELEASE",
            "CHART",
            "APP VERSION",
            "REVISION",
            "STATUS",
            "APPLIED",
        ],
        &rows,
    )
}

fn apply(r: &Release) -> &'static str {
    match r.apply_method {
        crate::installed::helm::record::ApplyMethod::Ssa => "server-side",
        crate::installed::helm::record::ApplyMethod::Csa => "client-side",
    }
}
