//! `meshup install` and `meshup upgrade` (a downgrade is the same command with an
//! older bundle): plan, check, confirm, lock, apply component by component, verify,
//! prune, record; on failure restore the previous release.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::{Env, PRODUCT, print_json};
use crate::apply;
use crate::bundle::Bundle;
use crate::checks::{self, Checker, Outcome, Overrides};
use crate::cluster::Cluster;
use crate::dataplane;
use crate::exit::{Code, Exit};
use crate::history::{Action, History, Release, Secrets, Status};
use crate::lock::Lock;
use crate::permissions;
use crate::plan::{self, Inputs, Plan};
use crate::policy::Phase;
use crate::render::ObjectKey;
use crate::state::{self, Installed};
use crate::ui::{Color, Ui};
use crate::version::Direction;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Install,
    Upgrade,
    /// `meshup precheck`: plan and checks only.
    Precheck,
}

pub struct Upgrade {
    pub mode: Mode,
    pub bundle: PathBuf,
    pub inputs: Inputs,
    pub yes: bool,
    pub dry_run: bool,
    pub overrides: Overrides,
    pub readiness_timeout: Duration,
    pub rollback_timeout: Duration,
    pub no_rollback: bool,
    /// Show object diffs in the plan.
    pub diff: bool,
}

/// The JSON document of `precheck`/`upgrade -o json`.
#[derive(Serialize)]
struct Doc<'a> {
    current_version: Option<&'a str>,
    target_version: &'a str,
    direction: Direction,
    blocked: bool,
    findings: &'a [crate::policy::Finding],
    overridden: &'a [String],
    /// Builtin policies that policy files replace in this run.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    replaced_policies: &'a [String],
    plan: PlanSummary<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<RunResult>,
}

#[derive(Serialize)]
struct PlanSummary<'a> {
    bundle: &'a str,
    profile: &'a str,
    install_method: &'a str,
    create: usize,
    update: usize,
    unchanged: usize,
    prune: usize,
    changes: &'a [plan::Change],
    profile_default_changes: &'a [plan::ValueChange],
    reverted_values: &'a [plan::ValueChange],
}

#[derive(Serialize, Clone)]
pub struct RunResult {
    pub status: String,
    pub revision: Option<u32>,
    pub seconds: f64,
    pub message: String,
    pub components: Vec<apply::ComponentReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_plane: Option<Value>,
}

use super::present::{capitalise, completion, show_findings, show_plan, transition};
use super::prompt::{confirm, interrupt_flag};
use crate::restore::Snapshot;

impl Upgrade {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let started = Instant::now();
        let ui = &env.ui;
        // Everything the user typed is validated before the cluster is touched.
        let bundle = Bundle::load(&self.bundle)?;
        crate::render::lint(&bundle)?;
        let loading = Instant::now();
        let checker = Checker::load(env.policy_config.as_deref(), env.audit_log.as_deref())?;
        if loading.elapsed() > Duration::from_secs(1) {
            // Only the first run pays this: compiled policies are cached.
            ui.say(format!(
                "compiled the policies in {:.1} s (cached for the next runs)",
                loading.elapsed().as_secs_f64()
            ));
        }
        let cluster = env.connect().await?;
        let history = env.history(&cluster, bundle.namespace(), PRODUCT);
        let live = history.live().await?;
        let installed = state::read(&cluster, bundle.namespace(), live.deployed).await?;
        self.preconditions(&installed, &bundle)?;
        let open = live.open;
        if let Some(p) = &open {
            ui.warn(format!(
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
                if self.mode == Mode::Precheck {
                    "would go on"
                } else {
                    "goes on"
                },
                p.captured
                    .as_ref()
                    .map(|c| format!(", and if it fails it restores {}", c.describe()))
                    .unwrap_or_default()
            ));
        }
        let plan = plan::build(&cluster, &bundle, &installed, &self.inputs).await?;
        let applied: Vec<ObjectKey> = plan.rendered.objects.iter().map(|o| o.key()).collect();
        let pruned: Vec<ObjectKey> = plan.prunes().map(|c| c.key.clone()).collect();
        let missing = permissions::missing(&cluster, &applied, &pruned).await?;
        let ctx = checks::context(Phase::Precheck, &bundle, &installed, &plan, None)?;
        let pre = checker
            .run(
                &cluster,
                Phase::Precheck,
                &ctx,
                [
                    checks::permission_findings(&missing),
                    checks::rejection_findings(&plan),
                ]
                .concat(),
                &self.overrides,
            )
            .await?;

        if !ui.json() {
            show_plan(
                ui,
                &plan,
                &installed,
                self.diff || self.mode == Mode::Precheck || self.dry_run,
            );
            for r in checker.replacements() {
                ui.say(format!("  note: {}", crate::policy::text::one_line(&r)));
            }
            show_findings(ui, &pre);
        }
        let replaced = checker.replacements();
        if pre.blocked || self.mode == Mode::Precheck {
            return self.finish_without_apply(ui, &plan, &installed, &pre, &replaced, None);
        }
        if self.dry_run {
            let (validated, deferred) = dry_run(&cluster, &plan).await?;
            let result = RunResult {
                status: "dry-run".into(),
                revision: None,
                seconds: started.elapsed().as_secs_f64(),
                message: format!(
                    "dry run: {validated} objects validated by the server{}, nothing changed",
                    if deferred > 0 {
                        format!(" ({deferred} wait for the namespace this run would create)")
                    } else {
                        String::new()
                    }
                ),
                components: vec![],
                data_plane: None,
            };
            return self.finish_without_apply(ui, &plan, &installed, &pre, &replaced, Some(result));
        }
        confirm(
            self.yes,
            &format!(
                "Proceed with the {} to {}?",
                plan.direction, plan.target_version
            ),
        )?;

        ensure_namespace(&cluster, &plan).await?;
        let lock = Lock::acquire(
            cluster.client().clone(),
            bundle.namespace(),
            crate::lock::duration(),
        )
        .await?;
        if let Some(who) = &lock.took_over {
            ui.warn(format!("took over the expired upgrade lock of {who}"));
        }
        let outcome = self
            .locked(
                env, &cluster, &bundle, &checker, &history, &installed, &plan, &pre, open, started,
            )
            .await;
        crate::lock::release_or_warn(lock, ui).await;
        let (code, result, post) = outcome?;
        if ui.json() {
            let mut findings = pre.findings.clone();
            findings.extend(post.into_iter().flat_map(|o| o.findings));
            print_json(&Doc {
                current_version: plan.current_version.as_deref(),
                target_version: &plan.target_version,
                direction: plan.direction,
                blocked: false,
                findings: &findings,
                overridden: &pre.overridden,
                replaced_policies: &checker.replacements(),
                plan: summary(&plan, &installed),
                result: Some(result),
            })?;
        }
        Ok(code)
    }

    fn preconditions(&self, installed: &Installed, bundle: &Bundle) -> anyhow::Result<()> {
        let present = installed.version();
        match self.mode {
            Mode::Install if present.is_some() && !self.overrides.force => Err(Exit::new(
                Code::Blocked,
                format!(
                    "a control plane is already installed in {} (version {}); use `meshup upgrade --bundle {}`, or `meshup install --force` to reinstall over it",
                    installed.namespace,
                    present.unwrap_or("?"),
                    self.bundle.display()
                ),
            )
            .into()),
            Mode::Upgrade if installed.control_planes.is_empty() => Err(Exit::bad_input(format!(
                "nothing to upgrade: no control plane in namespace {}; use `meshup install --bundle {}`",
                bundle.namespace(),
                self.bundle.display()
            ))
            .into()),
            _ => Ok(()),
        }
    }

    fn finish_without_apply(
        &self,
        ui: &Ui,
        plan: &Plan,
        installed: &Installed,
        pre: &Outcome,
        replaced: &[String],
        result: Option<RunResult>,
    ) -> anyhow::Result<Code> {
        if ui.json() {
            print_json(&Doc {
                current_version: plan.current_version.as_deref(),
                target_version: &plan.target_version,
                direction: plan.direction,
                blocked: pre.blocked,
                findings: &pre.findings,
                overridden: &pre.overridden,
                replaced_policies: replaced,
                plan: summary(plan, installed),
                result: result.clone(),
            })?;
        }
        if pre.blocked {
            let codes: Vec<&str> = pre
                .errors()
                .filter(|f| !pre.overridden.contains(&f.code))
                .map(|f| f.code.as_str())
                .collect();
            return Err(Exit::new(
                Code::Blocked,
                format!(
                    "blocked by {} check(s): {}; fix them, or override one with --ignore CODE (or all with --force), which is recorded",
                    codes.len(),
                    codes.join(", ")
                ),
            )
            .into());
        }
        if !ui.json() {
            match result {
                Some(r) => ui.say(r.message),
                None => ui.say(format!(
                    "precheck passed: {} {} can proceed",
                    plan.direction,
                    transition(plan)
                )),
            }
        }
        Ok(Code::Ok)
    }

    /// Everything done while holding the lock.
    #[allow(clippy::too_many_arguments)]
    async fn locked(
        &self,
        env: &Env,
        cluster: &Cluster,
        bundle: &Bundle,
        checker: &Checker,
        history: &History<Secrets>,
        installed: &Installed,
        plan: &Plan,
        pre: &Outcome,
        open: Option<Release>,
        started: Instant,
    ) -> anyhow::Result<(Code, RunResult, Option<Outcome>)> {
        let ui = &env.ui;
        let ctx = checks::context(Phase::PreUpgrade, bundle, installed, plan, None)?;
        let pre_upgrade = checker
            .run(cluster, Phase::PreUpgrade, &ctx, vec![], &self.overrides)
            .await?;
        show_findings(ui, &pre_upgrade);
        if pre_upgrade.blocked {
            return Err(Exit::new(
                Code::Blocked,
                "blocked by a pre-upgrade check; nothing was changed",
            )
            .into());
        }
        // Before the first change: the objects this run touches, as they are now. A run
        // that resumes an unfinished one keeps that run's capture (the state before it).
        let captured = Snapshot::capture(cluster, plan)
            .await?
            .under(open.as_ref().and_then(|o| o.captured.as_ref()));
        if let Some(mut o) = open {
            history
                .finish(
                    &mut o,
                    Status::Failed,
                    "unfinished; a later run went on from it".into(),
                )
                .await?;
        }
        let mut overridden = pre.overridden.clone();
        overridden.extend(pre_upgrade.overridden.iter().cloned());
        // The record keeps what the user overrode and which builtin checks were replaced.
        let mut notes = self.overrides.describe(&overridden);
        notes.extend(checker.replacements());
        let mut rec = record(bundle, plan, notes);
        rec.captured = Some(captured);
        let mut rec = history.begin(rec).await.map_err(|e| {
            e.context("cannot record the state before the upgrade (needed to restore it); nothing was changed")
        })?;
        ui.say(format!(
            "\n{} {} (revision {})",
            ui.paint(&capitalise(&plan.direction.to_string()), Color::Bold),
            transition(plan),
            rec.revision
        ));
        let interrupted = interrupt_flag(ui);
        let opts = apply::Options {
            readiness_timeout: self.readiness_timeout,
            interrupted: interrupted.clone(),
        };
        let pruned: Vec<ObjectKey> = plan.prunes().map(|c| c.key.clone()).collect();
        let target = apply::Target {
            layout: &bundle.manifest.components,
            namespace: bundle.namespace(),
            rendered: &plan.rendered,
            prune: &pruned,
            version: &plan.target_version,
        };
        let applied = apply::run(cluster, &target, &opts, ui).await;
        // Post-upgrade policies see the outcome either way; an error from them is a failure too.
        let (ok, msg) = match &applied {
            Ok(_) => (true, format!("control plane at {}", plan.target_version)),
            Err(f) => (false, f.to_string()),
        };
        let ctx = checks::context(Phase::PostUpgrade, bundle, installed, plan, Some((ok, msg)))?;
        let post = checker
            .run(cluster, Phase::PostUpgrade, &ctx, vec![], &self.overrides)
            .await?;
        show_findings(ui, &post);
        let failure = match applied {
            Ok(report) if !post.blocked => {
                let elapsed = started.elapsed().as_secs_f64();
                let description = format!(
                    "{} to {} complete",
                    capitalise(&plan.direction.to_string()),
                    plan.target_version
                );
                history
                    .finish(&mut rec, Status::Deployed, description)
                    .await?;
                // The upgrade is done and recorded; a stale installed-state only misleads a
                // later istioctl, so failing to write it is said, not turned into a failure.
                if let Err(e) = state::write_installed_state(
                    cluster,
                    bundle.namespace(),
                    &plan.profile,
                    &plan.values,
                )
                .await
                {
                    ui.warn(format!(
                        "istioctl's installed-state IstioOperator could not be updated ({e:#}); istioctl will still see the previous spec"
                    ));
                }
                let message = completion(plan, &report, elapsed);
                ui.say(format!("\n{}", ui.paint(&message, Color::Green)));
                let dp = dataplane::report(
                    cluster,
                    Some(plan.target_version.clone()),
                    bundle.namespace(),
                )
                .await?;
                if !ui.json() {
                    ui.say(format!("\n{}", super::dataplane::outdated_text(&dp)));
                }
                let result = RunResult {
                    status: "deployed".into(),
                    revision: Some(rec.revision),
                    seconds: elapsed,
                    message,
                    components: report.components,
                    data_plane: Some(serde_json::to_value(&dp)?),
                };
                return Ok((Code::Ok, result, Some(post)));
            }
            Ok(_) => {
                let codes: Vec<String> = post.errors().map(|f| f.code.clone()).collect();
                format!("post-upgrade check(s) failed: {}", codes.join(", "))
            }
            Err(f) => f.to_string(),
        };
        let (code, message) = if self.no_rollback {
            let msg = format!(
                "{failure}; left as is (--no-rollback). The cluster is between {} and {}: run `meshup rollback` to restore, or fix and re-run the upgrade",
                plan.current_version.as_deref().unwrap_or("nothing"),
                plan.target_version
            );
            history
                .finish(&mut rec, Status::Failed, msg.clone())
                .await?;
            (Code::NotRestored, msg)
        } else {
            ui.say(format!("{} {failure}", ui.paint("failed:", Color::Red)));
            let to = rec
                .captured
                .as_ref()
                .map(|c| c.describe())
                .unwrap_or_default();
            ui.say(format!(
                "rolling back to {to} (timeout {} s)",
                self.rollback_timeout.as_secs()
            ));
            let opts = apply::Options {
                readiness_timeout: self.rollback_timeout,
                interrupted: Arc::new(AtomicBool::new(false)),
            };
            let outcome =
                super::rollback::restore_run(cluster, history, &mut rec, Some(&failure), &opts, ui)
                    .await?;
            let code = if outcome.code == Code::Ok {
                Code::RolledBack
            } else {
                Code::NotRestored
            };
            (code, outcome.message)
        };
        let result = RunResult {
            status: if code == Code::RolledBack {
                "rolled-back".into()
            } else {
                "failed".into()
            },
            revision: Some(rec.revision),
            seconds: started.elapsed().as_secs_f64(),
            message: message.clone(),
            components: vec![],
            data_plane: None,
        };
        ui.say(ui.paint(&message, Color::Red));
        Ok((code, result, Some(post)))
    }
}

/// Server-side dry-run of every object: validation by the API server, nothing stored.
/// Objects in a namespace the plan itself creates cannot be checked before it exists.
async fn dry_run(cluster: &Cluster, plan: &Plan) -> anyhow::Result<(usize, usize)> {
    let created_ns: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.action == plan::Action::Create && c.key.kind == "Namespace")
        .map(|c| c.key.name.as_str())
        .collect();
    let (mut validated, mut deferred) = (0, 0);
    for o in &plan.rendered.objects {
        if o.namespace().is_some_and(|ns| created_ns.contains(&ns)) {
            deferred += 1;
            continue;
        }
        cluster.apply(&o.value, true).await.map_err(|e| {
            Exit::bad_input(format!(
                "dry run: the API server rejects {}: {e:#}",
                o.key()
            ))
        })?;
        validated += 1;
    }
    Ok((validated, deferred))
}

/// The lock and history live in the control-plane namespace, so on a first install it is
/// created (from the bundle's own Namespace object) before anything else.
async fn ensure_namespace(cluster: &Cluster, plan: &Plan) -> anyhow::Result<()> {
    let key = ObjectKey {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: plan.namespace.clone(),
    };
    if cluster.get(&key).await?.is_some() {
        return Ok(());
    }
    let ns = plan
        .rendered
        .objects
        .iter()
        .find(|o| o.key() == key)
        .map(|o| o.value.clone())
        .unwrap_or_else(|| serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.namespace}}));
    cluster.apply(&ns, false).await?;
    Ok(())
}

fn record(bundle: &Bundle, plan: &Plan, overridden: Vec<String>) -> Release {
    let action = match plan.direction {
        Direction::Install => Action::Install,
        Direction::Upgrade => Action::Upgrade,
        Direction::Downgrade => Action::Downgrade,
        Direction::Reinstall => Action::Reinstall,
    };
    Release {
        revision: 0,
        action,
        status: Status::Pending,
        bundle: bundle.manifest.name.clone(),
        version: plan.target_version.clone(),
        digest: bundle.digest.clone(),
        profile: plan.profile.clone(),
        profile_defaults: plan.profile_defaults.clone(),
        overlay: plan.overlay.clone(),
        values: plan.values.clone(),
        manifest: plan.rendered.manifest(),
        components: bundle.manifest.components.clone(),
        namespace: bundle.namespace().to_string(),
        description: format!("{} to {} in progress", action, plan.target_version),
        overridden,
        started: String::new(),
        finished: None,
        captured: None,
    }
}

fn summary<'a>(plan: &'a Plan, installed: &'a Installed) -> PlanSummary<'a> {
    PlanSummary {
        bundle: &plan.bundle,
        profile: &plan.profile,
        install_method: installed.method.name(),
        create: plan.count(plan::Action::Create),
        update: plan.count(plan::Action::Update),
        unchanged: plan.count(plan::Action::Unchanged),
        prune: plan.count(plan::Action::Prune),
        changes: &plan.changes,
        profile_default_changes: &plan.profile_default_changes,
        reverted_values: &plan.reverted_values,
    }
}
