//! How a plan, its checks, the progress and the outcome of an action read for people
//! (the CLI side: actions send events and return reports, this prints them).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

mod dataplane;
pub mod demo;
mod helm;
mod history;
mod plan;
mod status;
mod terminal;
mod version;

pub use dataplane::{dataplane_restart, dataplane_status, outdated_text};
pub use history::history;
pub use plan::{show_plan, transition};
pub use status::status;
pub use version::version;

use crate::action::{rollback, upgrade};
use crate::base::exit::Code;
use crate::base::text;
use crate::cli::ui::{Bar, Color, Ui, print_json};
use crate::engine::apply;
use crate::engine::checks::Outcome;
use crate::engine::progress::{Event, Progress};
use crate::installed::history::{Release, Status};
use crate::policy::Severity;

pub fn show_findings(ui: &Ui, outcome: &Outcome) {
    if outcome.findings.is_empty() || ui.json() {
        return;
    }
    ui.say(format!(
        "{} ({}):",
        ui.paint("Checks", Color::Bold),
        outcome.phase
    ));
    for f in &outcome.findings {
        let sev = match f.severity {
            Severity::Error if outcome.overridden.contains(&f.code) => {
                ui.paint("error (overridden)", Color::Yellow)
            }
            Severity::Error => ui.paint("error", Color::Red),
            Severity::Warning => ui.paint("warning", Color::Yellow),
            Severity::Info => ui.paint("info", Color::Cyan),
        };
        // Everything but the severity came from a policy: escaped, and continuation
        // lines indented under the finding so none can pose as a line of ours.
        let subject = f
            .subject
            .as_ref()
            .map(|s| format!(" [{}]", text::one_line(s)))
            .unwrap_or_default();
        let from = match f.source.as_str() {
            "" | "host" => text::one_line(&f.policy),
            source => format!("{}, {}", text::one_line(&f.policy), text::one_line(source)),
        };
        ui.say(format!(
            "  {sev} {} ({from}){subject}: {}",
            text::one_line(&f.code),
            text::block(&f.message, "      ")
        ));
        if let Some(r) = &f.remediation {
            ui.say(format!("      fix: {}", text::block(r, "      ")));
        }
    }
}

/// The terminal side of an action's progress: each event as the line (or bar) people see.
pub struct Narrator<'a> {
    ui: &'a Ui,
    /// One bar per workload being waited for.
    bars: Mutex<HashMap<String, Bar>>,
}

impl<'a> Narrator<'a> {
    pub fn new(ui: &'a Ui) -> Narrator<'a> {
        Narrator {
            ui,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bar>> {
        self.bars.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Progress for Narrator<'_> {
    fn event(&self, event: Event<'_>) {
        let ui = self.ui;
        match event {
            Event::PoliciesCompiled(took) => ui.say(format!(
                "compiled the policies in {:.1} s (cached for the next runs)",
                took.as_secs_f64()
            )),
            Event::Resuming { open, precheck } => ui.warn(resuming(open, precheck)),
            Event::Planned {
                plan,
                installed,
                diffs,
                replaced,
            } => {
                if !ui.json() {
                    show_plan(ui, plan, installed, diffs);
                    for r in replaced {
                        ui.say(format!("  note: {}", text::one_line(r)));
                    }
                }
            }
            Event::Checked(outcome) => show_findings(ui, outcome),
            Event::LockTakenOver(who) => {
                ui.warn(format!("took over the expired upgrade lock of {who}"))
            }
            Event::Started { plan, revision } => ui.say(format!(
                "\n{} {} (revision {revision})",
                ui.paint(&text::capitalise(&plan.direction.to_string()), Color::Bold),
                transition(plan),
            )),
            Event::WaitStarted { workload } => {
                self.bars()
                    .insert(workload.to_string(), ui.bar(workload, 1));
            }
            Event::Waiting {
                workload,
                ready,
                desired,
                message,
            } => {
                if let Some(bar) = self.bars().get(workload) {
                    bar.update(ready, desired, message);
                }
            }
            Event::WaitEnded { workload, outcome } => {
                if let Some(bar) = self.bars().remove(workload) {
                    bar.finish(outcome);
                }
            }
            Event::ComponentDone { report, verb } => ui.say(component_line(ui, report, verb)),
            Event::RollingBack {
                failure,
                to,
                timeout,
            } => {
                ui.say(format!("{} {failure}", ui.paint("failed:", Color::Red)));
                ui.say(format!(
                    "rolling back to {to} (timeout {} s)",
                    timeout.as_secs()
                ));
            }
            Event::RollbackChosen(what) => {
                ui.say(format!("{} {what}", ui.paint("Rollback:", Color::Bold)))
            }
            Event::Restarted { workload, result } => ui.say(match result {
                Ok(took) => format!(
                    "  {} {workload} ({:.1} s)",
                    ui.paint("restarted", Color::Green),
                    took.as_secs_f64()
                ),
                Err(e) => format!("  {} {workload}: {e}", ui.paint("failed", Color::Red)),
            }),
            Event::Warning(text) => ui.warn(text),
        }
    }

    fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        terminal::ask(question)
    }

    fn interrupt_flag(&self) -> Arc<AtomicBool> {
        terminal::interrupt_flag(self.ui)
    }
}

/// `  ✓ istiod   12 objects applied, istiod 1/1 ready in 1.2 s`
pub fn component_line(ui: &Ui, report: &apply::ComponentReport, verb: &str) -> String {
    format!(
        "  {} {:<18} {} objects {verb}{} in {:.1} s",
        ui.paint("✓", Color::Green),
        report.name,
        report.objects,
        if report.ready.is_empty() {
            String::new()
        } else {
            format!(", {} ready", report.ready)
        },
        report.seconds
    )
}

/// The warning about an unfinished earlier run that this one goes on from.
fn resuming(p: &Release, precheck: bool) -> String {
    format!(
        "revision {} ({} to {}, started {}) is {}: the cluster may be between two versions; this run {} from there{}",
        p.revision,
        p.action,
        p.version,
        p.started,
        if p.status == Status::Pending {
            "pending (interrupted)"
        } else {
            "failed and not restored"
        },
        if precheck { "would go on" } else { "goes on" },
        p.captured
            .as_ref()
            .map(|c| format!(", and if it fails it restores {}", c.describe()))
            .unwrap_or_default()
    )
}

/// Print an upgrade's outcome (its lines, or the JSON document) and return its exit
/// code, or the refusal of a run its checks blocked.
pub fn upgrade(ui: &Ui, report: &upgrade::Report) -> anyhow::Result<Code> {
    if ui.json() {
        print_json(&report.doc())?;
    }
    if let Some(refusal) = report.refusal() {
        return Err(refusal.into());
    }
    let plan = &report.plan;
    match report.result.as_ref().filter(|r| r.revision.is_some()) {
        // A run that changed the cluster: how it ended (on stderr beside the JSON).
        Some(r) if r.status == "deployed" => {
            ui.say(format!("\n{}", ui.paint(&r.message, Color::Green)));
            if let Some(dp) = report.data_plane.as_ref().filter(|_| !ui.json()) {
                ui.say(format!("\n{}", outdated_text(dp)));
            }
        }
        Some(r) => ui.say(ui.paint(&r.message, Color::Red)),
        // A precheck or a dry run changed nothing: its one line is for people only.
        None if ui.json() => {}
        None => ui.say(match &report.result {
            Some(dry_run) => dry_run.message.clone(),
            None => format!(
                "precheck passed: {} {} can proceed",
                plan.direction,
                transition(plan)
            ),
        }),
    }
    Ok(report.code)
}

/// Print a rollback's outcome and return its exit code.
pub fn rollback(ui: &Ui, report: &rollback::Report) -> anyhow::Result<Code> {
    let code = report.outcome.code;
    if ui.json() {
        print_json(&report.doc())?;
    } else {
        let color = if code == Code::Ok {
            Color::Green
        } else {
            Color::Red
        };
        ui.say(ui.paint(&report.message, color));
    }
    Ok(code)
}
