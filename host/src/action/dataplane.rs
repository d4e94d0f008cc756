//! `meshup dataplane status | restart`: workloads whose sidecars do not match the
//! control plane, and rolling restarts that re-inject them.

use std::time::Duration;

use super::{DEFAULT_NAMESPACE, Env, print_json};
use crate::cluster::Cluster;
use crate::dataplane::{self, Report, RestartOptions};
use crate::exit::Code;
use crate::state;
use crate::ui::{Color, table};

pub struct DataplaneStatus {
    pub namespace: Option<String>,
}

pub struct DataplaneRestart {
    pub control_plane_namespace: Option<String>,
    pub namespaces: Vec<String>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub dry_run: bool,
}

async fn read(env: &Env, ns: &str) -> anyhow::Result<(Cluster, Report)> {
    let cluster = env.cluster().await?;
    let installed = state::read(&cluster, ns, None).await?;
    let report = dataplane::report(&cluster, installed.version().map(str::to_string), ns).await?;
    Ok((cluster, report))
}

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

impl DataplaneStatus {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let ns = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let (_, report) = read(env, ns).await?;
        if env.ui.json() {
            let outdated: Vec<_> = report.outdated().into_iter().cloned().collect();
            print_json(
                &serde_json::json!({"control_plane_version": report.control_plane_version,
                "pods": report.pods, "workloads": report.workloads, "outdated": outdated}),
            )?;
        } else {
            env.ui.say(outdated_text(&report));
        }
        Ok(Code::Ok)
    }
}

impl DataplaneRestart {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let ns = self
            .control_plane_namespace
            .as_deref()
            .unwrap_or(DEFAULT_NAMESPACE);
        let (cluster, report) = read(env, ns).await?;
        let opts = RestartOptions {
            namespaces: self.namespaces.clone(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            dry_run: self.dry_run,
        };
        let ui = &env.ui;
        let out = dataplane::restart(&cluster, &report, &opts, |id, r| match r {
            Ok(d) => ui.say(format!(
                "  {} {id} ({:.1} s)",
                ui.paint("restarted", Color::Green),
                d.as_secs_f64()
            )),
            Err(e) => ui.say(format!("  {} {id}: {e}", ui.paint("failed", Color::Red))),
        })
        .await?;
        if ui.json() {
            print_json(
                &serde_json::json!({"dry_run": self.dry_run, "restarted": out.restarted,
                "failed": out.failed, "not_restarted": out.not_restarted}),
            )?;
        } else {
            if self.dry_run {
                ui.say("dry run: nothing restarted; these would be:");
            } else if !out.not_restarted.is_empty() {
                ui.say("stopped at the first failure; not restarted:");
            }
            for w in &out.not_restarted {
                ui.say(format!("  {w}"));
            }
            if out.restarted.is_empty() && out.not_restarted.is_empty() && out.failed.is_empty() {
                ui.say("data plane: nothing to restart, every sidecar matches the control plane");
            } else if !self.dry_run {
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
}
