//! `meshup status` for people (text) and machines (one JSON document).

use crate::action::status::{Report, Workload};
use crate::base::exit::Code;
use crate::base::text;
use crate::cli::ui::{Ui, print_json, table};
use crate::engine::dataplane;
use crate::installed::state::Installed;

/// Print a status report; status always exits 0 once it could read the cluster.
pub fn status(ui: &Ui, report: &Report) -> anyhow::Result<Code> {
    if ui.json() {
        print_json(&report.doc())?;
    } else {
        print_text(ui, &report.installed, &report.workloads, &report.data_plane);
    }
    Ok(Code::Ok)
}

fn print_text(ui: &Ui, installed: &Installed, workloads: &[Workload], dp: &dataplane::Report) {
    match &installed.release {
        Some(r) => ui.say(format!(
            "release: revision {} ({}), {} {} profile {}, {}",
            r.revision,
            r.status,
            r.bundle,
            r.version,
            r.profile,
            r.finished.as_deref().unwrap_or(&r.started)
        )),
        None => ui.say(format!(
            "release: none recorded by meshup (install method: {})",
            installed.method.name()
        )),
    }
    if !installed.helm.releases.is_empty() {
        ui.say(format!(
            "helm releases:\n{}",
            super::helm::indented(&installed.helm.releases, "  ")
        ));
    }
    for note in &installed.helm.notes {
        ui.warn(text::one_line(note));
    }
    ui.say(format!("kubernetes: {}", installed.kubernetes_version));
    if installed.control_planes.is_empty() {
        ui.say(format!(
            "control plane: none in namespace {}",
            installed.namespace
        ));
    }
    for cp in &installed.control_planes {
        let pods: Vec<String> = cp
            .pods
            .iter()
            .map(|p| format!("{}={}", p.pod, p.version))
            .collect();
        ui.say(format!(
            "control plane: revision {} ({}) at {}, ready {}; pods: {}",
            cp.revision,
            cp.deployment,
            cp.version.as_deref().unwrap_or("unknown"),
            cp.ready,
            if pods.is_empty() {
                "none".into()
            } else {
                pods.join(", ")
            }
        ));
    }
    if !workloads.is_empty() {
        let rows: Vec<Vec<String>> = workloads
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    w.component.clone(),
                    w.ready.clone(),
                    w.version.clone(),
                    w.state.clone(),
                ]
            })
            .collect();
        ui.say("");
        ui.say(table(
            &["WORKLOAD", "COMPONENT", "READY", "VERSION", "STATE"],
            &rows,
        ));
    }
    ui.say("");
    ui.say(dataplane_summary(dp));
}

/// Proxy versions by namespace, as a table.
fn dataplane_summary(dp: &dataplane::Report) -> String {
    let by_ns = dp.by_namespace();
    if by_ns.is_empty() {
        return "data plane: no pods with an istio-proxy sidecar".into();
    }
    let rows: Vec<Vec<String>> = by_ns
        .iter()
        .map(|(ns, versions)| {
            let vs = dataplane::sorted_versions(versions.keys().copied());
            let text: Vec<String> = vs
                .iter()
                .map(|v| format!("{v} ({})", versions[v]))
                .collect();
            let outdated = match &dp.control_plane_version {
                Some(cp) => versions
                    .iter()
                    .filter(|(v, _)| *v != cp)
                    .map(|(_, n)| n)
                    .sum::<usize>(),
                None => 0,
            };
            vec![ns.to_string(), text.join(", "), outdated.to_string()]
        })
        .collect();
    format!(
        "data plane ({} pods with sidecars):\n{}",
        dp.pods,
        table(&["NAMESPACE", "PROXY VERSIONS (PODS)", "OUTDATED"], &rows)
    )
}
