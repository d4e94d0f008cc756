//! How a plan, its checks and the outcome read for people.

use crate::apply;
use crate::checks::Outcome;
use crate::plan::{self, Plan};
use crate::policy::{Severity, text};
use crate::state::{self, Installed};
use crate::ui::{Color, Ui};
use crate::version::Direction;

/// "control plane now at 1.8.6 (istiod 2/2, ingress 2/2) in 14.2 s"
pub fn completion(plan: &Plan, report: &apply::Report, secs: f64) -> String {
    let ready: Vec<String> = report
        .components
        .iter()
        .filter(|c| !c.ready.is_empty())
        .map(|c| c.ready.clone())
        .collect();
    format!(
        "control plane now at {} ({}) in {secs:.1} s",
        plan.target_version,
        ready.join(", ")
    )
}

pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `1.7.8 → 1.8.6`, or just `1.8.6` for a first install.
pub fn transition(plan: &Plan) -> String {
    match &plan.current_version {
        Some(c) => format!("{c} → {}", plan.target_version),
        None => plan.target_version.clone(),
    }
}

pub fn show_plan(ui: &Ui, plan: &Plan, installed: &Installed, diffs: bool) {
    let installed_by = match &installed.method {
        crate::state::InstallMethod::None => String::new(),
        m => format!(", installed by {}", m.name()),
    };
    ui.say(format!(
        "{} {} ({}, profile {}{installed_by})",
        ui.paint("Plan:", Color::Bold),
        transition(plan),
        plan.direction,
        plan.profile,
    ));
    for cp in installed
        .control_planes
        .iter()
        .filter(|c| c.revision != state::DEFAULT_REVISION)
    {
        ui.say(format!(
            "  note: revision `{}` ({}) at {} runs beside it and is left alone",
            cp.revision,
            cp.deployment,
            cp.version.as_deref().unwrap_or("?")
        ));
    }
    if installed.mixed_versions() {
        let pods: Vec<String> = installed
            .in_place()
            .map(|c| {
                c.pods
                    .iter()
                    .map(|p| format!("{}={}", p.pod, p.version))
                    .collect()
            })
            .unwrap_or_default();
        ui.say(format!(
            "  note: control-plane pods disagree on their version: {}",
            pods.join(", ")
        ));
    }
    ui.say(format!(
        "  objects: {} to create, {} to update, {} unchanged, {} to prune",
        plan.count(plan::Action::Create),
        plan.count(plan::Action::Update),
        plan.count(plan::Action::Unchanged),
        plan.count(plan::Action::Prune)
    ));
    // Per component: counts, then each object that changes an existing one or goes away.
    let mut components: Vec<&str> = Vec::new();
    for c in &plan.changes {
        if !components.contains(&c.component.as_str()) {
            components.push(&c.component);
        }
    }
    for comp in components {
        let of = |a: plan::Action| {
            plan.changes
                .iter()
                .filter(|c| c.component == comp && c.action == a)
                .count()
        };
        let mut parts = vec![];
        for (a, word) in [
            (plan::Action::Create, "create"),
            (plan::Action::Update, "update"),
            (plan::Action::Unchanged, "unchanged"),
            (plan::Action::Prune, "prune"),
        ] {
            if of(a) > 0 {
                parts.push(format!("{} {word}", of(a)));
            }
        }
        ui.say(format!("    {comp:<18} {}", parts.join(", ")));
        for c in plan.changes.iter().filter(|c| c.component == comp) {
            let tag = match c.action {
                plan::Action::Update => ui.paint("~ update", Color::Yellow),
                plan::Action::Prune => ui.paint("- prune ", Color::Red),
                plan::Action::Create if plan.direction != Direction::Install => {
                    ui.paint("+ create", Color::Green)
                }
                _ => continue,
            };
            ui.say(format!("      {tag} {}", c.object));
        }
    }
    if !plan.profile_default_changes.is_empty() {
        ui.say("  profile defaults that change (you do not set them):");
        for v in &plan.profile_default_changes {
            ui.say(format!("    {}: {} → {}", v.path, v.old, v.new));
        }
    }
    if !plan.reverted_values.is_empty() {
        ui.say("  values you set last time that this run reverts (repeat them with --set or -f to keep them):");
        for v in &plan.reverted_values {
            ui.say(format!("    {}: {} → {}", v.path, v.old, v.new));
        }
    }
    if diffs {
        for c in plan.changes.iter().filter_map(|c| c.diff.as_ref()) {
            for line in c.lines() {
                let painted = if line.starts_with('+') && !line.starts_with("+++") {
                    ui.paint(line, Color::Green)
                } else if line.starts_with('-') && !line.starts_with("---") {
                    ui.paint(line, Color::Red)
                } else {
                    line.to_string()
                };
                ui.say(format!("    {painted}"));
            }
        }
    }
}

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
