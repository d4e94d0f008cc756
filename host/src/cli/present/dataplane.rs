//! `meshup dataplane status | restart` for people and machines.

use crate::action::dataplane::Restarted;
use crate::base::exit::Code;
use crate::cli::ui::{Ui, print_json, table};
use crate::engine::dataplane::Report;

/// The outdated-workload table with one restart command per line, for people.
pub fn outdated_text(report: &Report) -> String {
    let outdated = report.outdated();
    let Some(cp) = &report.control_plane_version else {
        return "data plane: no control plane is running, nothing to compare proxies with".into();
    };
    if outdated.is_empty() {
        return match report.pods {
            0 => "data plane: no pods with sidecars yet".into(),
            n => format!("data plane: all {n} sidecars run {cp}"),
        };
    }
    let rows: Vec<Vec<String>> = outdated
        .iter()
        .map(|w| {
            let vs: Vec<String> = w
                .versions
                .iter()
                .map(|(v, n)| format!("{v} ({n})"))
                .collect();
            vec![w.namespace.clone(), w.workload.clone(), vs.join(", ")]
        })
        .collect();
    let mut out = format!(
        "data plane: {} workload(s) run a proxy other than the control plane's {cp}:\n{}\n\nRestart them to pick up the new proxy:\n",
        outdated.len(),
        table(&["NAMESPACE", "WORKLOAD", "PROXY VERSIONS (PODS)"], &rows)
    );
    for w in &outdated {
        out.push_str(&format!("  {}\n", w.restart_command()));
    }
    let mut nss: Vec<&str> = outdated.iter().map(|w| w.namespace.as_str()).collect();
    nss.dedup();
    out.push_str(&format!(
        "or: meshup dataplane restart {}",
        nss.iter()
            .map(|n| format!("--namespace {n}"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    out
}

/// Print the data plane's proxy versions against the control plane's.
pub fn dataplane_status(ui: &Ui, report: &Report) -> anyhow::Result<Code> {
    if ui.json() {
        let outdated: Vec<_> = report.outdated().into_iter().cloned().collect();
        print_json(
            &serde_json::json!({"control_plane_version": report.control_plane_version,
            "pods": report.pods, "workloads": report.workloads, "outdated": outdated}),
        )?;
    } else {
        ui.say(outdated_text(report));
    }
    Ok(Code::Ok)
}

/// Print what a restart did; any failed workload is an unexpected error (exit 1).
pub fn dataplane_restart(ui: &Ui, restarted: &Restarted) -> anyhow::Result<Code> {
    let out = &restarted.outcome;
    let dry_run = restarted.dry_run;
    if ui.json() {
        print_json(
            &serde_json::json!({"dry_run": dry_run, "restarted": out.restarted,
            "failed": out.failed, "not_restarted": out.not_restarted}),
        )?;
    } else {
        if dry_run {
            ui.say("dry run: nothing restarted; these would be:");
        } else if !out.not_restarted.is_empty() {
            ui.say("stopped at the first failure; not restarted:");
        }
        for w in &out.not_restarted {
            ui.say(format!("  {w}"));
        }
        if out.restarted.is_empty() && out.not_restarted.is_empty() && out.failed.is_empty() {
            ui.say("data plane: nothing to restart, every sidecar matches the control plane");
        } else if !dry_run {
            ui.say(format!(
                "restarted {}, failed {}, not restarted {}",
                out.restarted.len(),
                out.failed.len(),
                out.not_restarted.len()
            ));
        }
    }
    Ok(if out.failed.is_empty() {
        Code::Ok
    } else {
        Code::Unexpected
    })
}
