//! `meshup history` as a table, or as one JSON document.

use crate::action::history::Report;
use crate::base::exit::Code;
use crate::cli::ui::{Ui, print_json, table};

pub fn history(ui: &Ui, report: &Report) -> anyhow::Result<Code> {
    if ui.json() {
        // Through a JSON value, as it always was: keys in alphabetical order.
        print_json(&serde_json::json!({
            "namespace": report.namespace,
            "releases": report.releases,
        }))?;
    } else if report.releases.is_empty() {
        ui.say(format!(
            "no meshup releases in namespace {}",
            report.namespace
        ));
    } else {
        let cells: Vec<Vec<String>> = report
            .releases
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
        ui.say(table(
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
