//! How a plan reads for people: what is installed, what changes per component (objects
//! whose only change is version metadata counted, every other change described in a line
//! or two), which values change without the user asking, and the diffs `--diff` asks for.

use crate::base::text;
use crate::base::version::Direction;
use crate::cli::ui::{Color, Ui};
use crate::engine::plan::{self, DiffMode, Plan};
use crate::installed::state::{self, InstallMethod, Installed};
use meshup_vocab::tree::{describe_change, show};

/// `1.7.8 → 1.8.6`, or just `1.8.6` for a first install.
pub fn transition(plan: &Plan) -> String {
    match &plan.current_version {
        Some(c) => format!("{c} → {}", plan.target_version),
        None => plan.target_version.clone(),
    }
}

pub fn show_plan(ui: &Ui, plan: &Plan, installed: &Installed, diffs: DiffMode) {
    heading(ui, plan, installed);
    installed_notes(ui, installed);
    let unknown = match plan.count(plan::Action::Unknown) {
        0 => String::new(),
        n => format!(", {n} unknown (not readable by the current user)"),
    };
    ui.say(format!(
        "  objects: {} to create, {} to update, {} unchanged, {} to prune{unknown}",
        plan.count(plan::Action::Create),
        plan.count(plan::Action::Update),
        plan.count(plan::Action::Unchanged),
        plan.count(plan::Action::Prune)
    ));
    for component in components(plan) {
        component_changes(ui, plan, component);
    }
    value_changes(ui, plan);
    object_diffs(ui, plan, diffs);
    if diffs == DiffMode::Summary && plan.count(plan::Action::Update) > 0 {
        ui.say(ui.paint(
            "  (each object's diff: --diff changes; with the version labels too: --diff full)",
            Color::Dim,
        ));
    }
}

/// `Plan: 1.7.8 → 1.8.6 (upgrade, profile default, installed by meshup)`
fn heading(ui: &Ui, plan: &Plan, installed: &Installed) {
    let installed_by = match &installed.method {
        InstallMethod::None => String::new(),
        // Without meshup's history a meshup install looks like istioctl's (same labels).
        m if installed.history_unreadable => {
            format!(", installed by {} as far as the cluster shows", m.name())
        }
        m => format!(", installed by {}", m.name()),
    };
    ui.say(format!(
        "{} {} ({}, profile {}{installed_by}; rendered in {:.2} s)",
        ui.paint("Plan:", Color::Bold),
        transition(plan),
        plan.direction,
        plan.profile,
        plan.render_seconds,
    ));
}

/// What the plan leaves alone or cannot tell from the cluster: revisions beside the
/// default one, and control-plane pods that disagree on their version.
fn installed_notes(ui: &Ui, installed: &Installed) {
    if !installed.helm.releases.is_empty() {
        ui.say(format!(
            "  helm releases:\n{}",
            super::helm::indented(&installed.helm.releases, "    ")
        ));
    }
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
    if installed.history_unreadable {
        ui.say(format!(
            "  note: meshup's release history in {} could not be read (the API server refused it): what runs, and who installed it, are read from the cluster alone",
            installed.namespace
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
}

/// The plan's components, in the order their first change comes.
fn components(plan: &Plan) -> Vec<&str> {
    let mut components: Vec<&str> = Vec::new();
    for c in &plan.changes {
        if !components.contains(&c.component.as_str()) {
            components.push(&c.component);
        }
    }
    components
}

/// One component's counts, then each object that changes an existing one or goes away
/// (and, on an upgrade, each new one: on a first install every object is new).
fn component_changes(ui: &Ui, plan: &Plan, component: &str) {
    let of = |a: plan::Action| {
        plan.changes
            .iter()
            .filter(|c| c.component == component && c.action == a)
            .count()
    };
    let mut parts = vec![];
    for (a, word) in [
        (plan::Action::Create, "create"),
        (plan::Action::Update, "update"),
        (plan::Action::Unchanged, "unchanged"),
        (plan::Action::Prune, "prune"),
        (plan::Action::Unknown, "unknown"),
    ] {
        if of(a) > 0 {
            parts.push(format!("{} {word}", of(a)));
        }
    }
    ui.say(format!("    {component:<18} {}", parts.join(", ")));
    let mine = || plan.changes.iter().filter(|c| c.component == component);
    let version_only = mine().filter(|c| c.version_only).count();
    if version_only > 0 {
        let from = plan.current_version.as_deref().unwrap_or("?");
        let line = format!(
            "      {version_only} update(s) only move version labels ({from} → {})",
            plan.target_version
        );
        ui.say(ui.paint(&line, Color::Dim));
    }
    for c in mine().filter(|c| !c.version_only) {
        let tag = match c.action {
            plan::Action::Update => ui.paint("~ update", Color::Yellow),
            plan::Action::Prune => ui.paint("- prune ", Color::Red),
            plan::Action::Create if plan.direction != Direction::Install => {
                ui.paint("+ create", Color::Green)
            }
            _ => continue,
        };
        ui.say(format!("      {tag} {}", c.object));
        for line in &c.summary {
            ui.say(format!("          {}", text::one_line(line)));
        }
    }
}

/// Values that change though the user did not ask: new profile defaults, and what the
/// user set last time but not this time.
fn value_changes(ui: &Ui, plan: &Plan) {
    if !plan.profile_default_changes.is_empty() {
        ui.say("  profile defaults that change (you do not set them):");
        for v in &plan.profile_default_changes {
            ui.say(format!(
                "    {}: {}",
                text::one_line(&v.path),
                text::one_line(&describe_change(Some(&v.old), Some(&v.new)))
            ));
        }
    }
    if !plan.kept_values.is_empty() {
        ui.say("  values you set last time, kept (--reset-values drops them):");
        for v in &plan.kept_values {
            ui.say(format!(
                "    {} = {}",
                text::one_line(&v.path),
                text::one_line(&show(Some(&v.value)))
            ));
        }
    }
    if !plan.reverted_values.is_empty() {
        ui.say("  values you set last time that this run reverts (repeat them with --set or -f to keep them):");
        for v in &plan.reverted_values {
            ui.say(format!(
                "    {}: {}",
                text::one_line(&v.path),
                text::one_line(&describe_change(Some(&v.old), Some(&v.new)))
            ));
        }
    }
}

/// The unified diffs `mode` shows, added lines green and removed ones red.
fn object_diffs(ui: &Ui, plan: &Plan, mode: DiffMode) {
    let shown = plan.changes.iter().filter(|c| c.diff_shown(mode));
    for c in shown.filter_map(|c| c.diff.as_ref()) {
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
