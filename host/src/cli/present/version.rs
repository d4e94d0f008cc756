//! `meshup version` as lines, or as one JSON document.

use crate::action::version::Report;
use crate::base::exit::Code;
use crate::cli::ui::{Ui, print_json};

pub fn version(ui: &Ui, report: &Report) -> anyhow::Result<Code> {
    if ui.json() {
        print_json(report)?;
        return Ok(Code::Ok);
    }
    ui.say(format!("client: meshup {}", report.client));
    ui.say(format!("policies speak: {}", report.wit));
    for p in &report.builtin_policies {
        ui.say(format!("  builtin:{:<18} sha256:{}", p.name, p.sha256));
    }
    if let Some(k) = &report.kubernetes {
        ui.say(format!("kubernetes: {k}"));
        ui.say(format!(
            "control plane: {}",
            report.control_plane.as_deref().unwrap_or("none installed")
        ));
    }
    Ok(Code::Ok)
}
