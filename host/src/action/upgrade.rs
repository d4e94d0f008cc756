//! `meshup install` and `meshup upgrade` (a downgrade is the same command with an
//! older bundle): plan, check, confirm, lock, apply component by component, verify,
//! prune, record; on failure restore the previous release.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::{Env, product};
use crate::base::exit::{Code, Exit};
use crate::base::object::ObjectKey;
use crate::base::version::Direction;
use crate::cluster::kube::Kube;
use crate::cluster::lock::Lock;
use crate::cluster::permissions;
use crate::engine::apply;
use crate::engine::checks::{self, Checker, Outcome, Overrides};
use crate::engine::dataplane;
use crate::engine::plan::{self, Plan};
use crate::engine::progress::{Event, Progress};
use crate::installed::history::{Action, History, Release, Status};
use crate::installed::installers;
use crate::installed::state::Installed;
use crate::policy::Phase;
use crate::release::source::Inputs;
use crate::release::source::{Facts, Source};

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
    findings: Vec<crate::policy::Finding>,
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

use crate::base::text::capitalise;

/// What an upgrade (or install, or precheck) found and did: the CLI prints it, as text or
/// as the JSON document.
pub struct Report {
    pub plan: Plan,
    pub installed: Installed,
    /// The precheck phase's findings (its `blocked` refuses the run).
    pub pre: Outcome,
    /// The post-upgrade phase's findings, once changes were made.
    pub post: Option<Outcome>,
    /// Builtin policies that policy files replace in this run.
    pub replaced: Vec<String>,
    /// What happened (`None`: a precheck, or a run refused by its checks).
    pub result: Option<RunResult>,
    /// The data plane after a successful run (whose proxies are now outdated).
    pub data_plane: Option<dataplane::Report>,
    pub code: Code,
}

impl Report {
    /// The exit error of a run refused by its prechecks.
    pub fn refusal(&self) -> Option<Exit> {
        if !self.pre.blocked {
            return None;
        }
        let codes: Vec<&str> = self
            .pre
            .errors()
            .filter(|f| !self.pre.overridden.contains(&f.code))
            .map(|f| f.code.as_str())
            .collect();
        Some(Exit::new(
            Code::Blocked,
            format!(
                "blocked by {} check(s): {}; fix them, or override one with --ignore CODE (or all with --force), which is recorded",
                codes.len(),
                codes.join(", ")
            ),
        ))
    }

    /// The JSON document of `precheck`/`upgrade -o json`.
    pub fn doc(&self) -> impl Serialize + '_ {
        let mut findings = self.pre.findings.clone();
        findings.extend(self.post.iter().flat_map(|o| o.findings.iter().cloned()));
        Doc {
            current_version: self.plan.current_version.as_deref(),
            target_version: &self.plan.target_version,
            direction: self.plan.direction,
            blocked: self.pre.blocked,
            findings,
            overridden: &self.pre.overridden,
            replaced_policies: &self.replaced,
            plan: summary(&self.plan, &self.installed),
            result: self.result.clone(),
        }
    }
}

/// What the run knows once it has planned and prechecked, before any change.
struct Planned {
    installed: Installed,
    plan: Plan,
    pre: Outcome,
    /// An unfinished earlier run this one goes on from.
    open: Option<Release>,
}

/// One run of an `Upgrade`: what every step needs, gathered once.
struct Run<'a> {
    up: &'a Upgrade,
    kube: Arc<dyn Kube>,
    history: History,
    source: Box<dyn Source>,
    checker: Arc<Checker>,
    progress: &'a dyn Progress,
    started: Instant,
}

impl Upgrade {
    /// The target release, validated before the cluster is touched: the bundle named by
    /// `--bundle` (a new source is one more flag and one more arm here).
    fn source(&self) -> anyhow::Result<Box<dyn Source>> {
        crate::release::load_bundle(&self.bundle)
    }

    /// Plan and check; then (unless only checking) confirm, lock, apply, verify and record,
    /// restoring the state before the run if it fails.
    pub async fn run(&self, env: &Env, progress: &dyn Progress) -> anyhow::Result<Report> {
        let started = Instant::now();
        // Everything the user typed is validated before the cluster is touched.
        let source = self.source()?;
        let loading = Instant::now();
        let checker = env.checker()?;
        if loading.elapsed() > Duration::from_secs(1) {
            progress.event(Event::PoliciesCompiled(loading.elapsed()));
        }
        let conn = env.connect().await?;
        let history = env.history(&conn, &source.facts().namespace, product());
        let run = Run {
            up: self,
            kube: conn.kube,
            history,
            source,
            checker,
            progress,
            started,
        };
        let planned = run.plan_and_check().await?;
        if planned.pre.blocked || self.mode == Mode::Precheck {
            return Ok(run.unchanged(planned, None));
        }
        if self.dry_run {
            let result = run.dry_run(&planned.plan).await?;
            return Ok(run.unchanged(planned, Some(result)));
        }
        crate::engine::progress::confirmed(
            progress,
            self.yes,
            &format!(
                "Proceed with the {} to {}?",
                planned.plan.direction, planned.plan.target_version
            ),
        )?;
        run.change(planned).await
    }

    fn preconditions(&self, installed: &Installed, facts: &Facts) -> anyhow::Result<()> {
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
                facts.namespace,
                self.bundle.display()
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

/// What a finished run returns: its code, result, post-upgrade findings and data plane.
type Finished = (Code, RunResult, Outcome, Option<dataplane::Report>);

impl Run<'_> {
    fn kube(&self) -> &dyn Kube {
        self.kube.as_ref()
    }

    /// Take the lock, make the change (or undo it), let the lock go, and report.
    async fn change(&self, planned: Planned) -> anyhow::Result<Report> {
        ensure_namespace(self.kube(), &planned.plan).await?;
        let lock = Lock::acquire(
            self.kube.clone(),
            &self.source.facts().namespace,
            crate::cluster::lock::duration(),
        )
        .await?;
        if let Some(who) = &lock.took_over {
            self.progress.event(Event::LockTakenOver(who));
        }
        let outcome = self.locked(&planned).await;
        super::release_lock(lock, self.progress).await;
        let (code, result, post, data_plane) = outcome?;
        Ok(Report {
            plan: planned.plan,
            installed: planned.installed,
            pre: planned.pre,
            post: Some(post),
            replaced: self.checker.replacements(),
            result: Some(result),
            data_plane,
            code,
        })
    }

    /// Read what is installed, plan the change and run the prechecks (nothing changes).
    async fn plan_and_check(&self) -> anyhow::Result<Planned> {
        let (up, source) = (self.up, &*self.source);
        let facts = source.facts();
        let live = self.history.live().await?;
        let discovery = &facts.discovery;
        let installed = crate::installed::discover::read(
            self.kube(),
            discovery,
            &facts.namespace,
            live.deployed,
        )
        .await?;
        up.preconditions(&installed, facts)?;
        if let Some(open) = &live.open {
            self.progress.event(Event::Resuming {
                open,
                precheck: up.mode == Mode::Precheck,
            });
        }
        let plan = plan::build(self.kube(), source, &installed, &up.inputs).await?;
        let applied: Vec<ObjectKey> = plan.rendered.objects.iter().map(|o| o.key()).collect();
        let pruned: Vec<ObjectKey> = plan.prunes().map(|c| c.key.clone()).collect();
        let missing = permissions::missing(self.kube(), &applied, &pruned).await?;
        let ctx = checks::context(Phase::Precheck, source, &installed, &plan, None)?;
        let found = [
            checks::permission_findings(&missing),
            checks::rejection_findings(&plan),
            checks::cluster_specific_findings(&plan),
        ]
        .concat();
        let pre = self
            .checker
            .run(self.kube(), Phase::Precheck, &ctx, found, &up.overrides)
            .await?;
        self.progress.event(Event::Planned {
            plan: &plan,
            installed: &installed,
            diffs: up.diff || up.mode == Mode::Precheck || up.dry_run,
            replaced: &self.checker.replacements(),
        });
        self.progress.event(Event::Checked(&pre));
        Ok(Planned {
            installed,
            plan,
            pre,
            open: live.open,
        })
    }

    /// The report of a run that changes nothing (a precheck, a refusal, a dry run).
    fn unchanged(&self, planned: Planned, result: Option<RunResult>) -> Report {
        let code = if planned.pre.blocked {
            Code::Blocked
        } else {
            Code::Ok
        };
        Report {
            plan: planned.plan,
            installed: planned.installed,
            pre: planned.pre,
            post: None,
            replaced: self.checker.replacements(),
            result,
            data_plane: None,
            code,
        }
    }

    /// Every object validated by the API server, nothing stored.
    async fn dry_run(&self, plan: &Plan) -> anyhow::Result<RunResult> {
        let (validated, deferred) = dry_run(self.kube(), plan).await?;
        Ok(RunResult {
            status: "dry-run".into(),
            revision: None,
            seconds: self.started.elapsed().as_secs_f64(),
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
        })
    }

    /// Everything done while holding the lock: last checks, record, apply, verify; then
    /// record the outcome, or restore the state before the run.
    async fn locked(&self, planned: &Planned) -> anyhow::Result<Finished> {
        let pre_upgrade = self.pre_upgrade_checks(planned).await?;
        let mut rec = self.begin(planned, &pre_upgrade).await?;
        let plan = &planned.plan;
        self.progress.event(Event::Started {
            plan,
            revision: rec.revision,
        });
        let opts = apply::Options {
            readiness_timeout: self.up.readiness_timeout,
            interrupted: self.progress.interrupt_flag(),
        };
        let pruned: Vec<ObjectKey> = plan.prunes().map(|c| c.key.clone()).collect();
        let target = apply::Target {
            layout: &self.source.facts().components,
            namespace: &self.source.facts().namespace,
            rendered: &plan.rendered,
            prune: &pruned,
            version: &plan.target_version,
        };
        let applied = apply::run(self.kube(), &target, &opts, self.progress).await;
        let post = self.post_upgrade_checks(planned, &applied).await?;
        let failure = match applied {
            Ok(report) if !post.blocked => return self.deployed(plan, rec, report, post).await,
            Ok(_) => {
                let codes: Vec<String> = post.errors().map(|f| f.code.clone()).collect();
                format!("post-upgrade check(s) failed: {}", codes.join(", "))
            }
            Err(f) => f.to_string(),
        };
        let (code, message) = self.recover(plan, &mut rec, &failure).await?;
        let result = RunResult {
            status: if code == Code::RolledBack {
                "rolled-back".into()
            } else {
                "failed".into()
            },
            revision: Some(rec.revision),
            seconds: self.started.elapsed().as_secs_f64(),
            message,
            components: vec![],
            data_plane: None,
        };
        Ok((code, result, post, None))
    }

    async fn pre_upgrade_checks(&self, planned: &Planned) -> anyhow::Result<Outcome> {
        let Planned {
            installed, plan, ..
        } = planned;
        let ctx = checks::context(Phase::PreUpgrade, &*self.source, installed, plan, None)?;
        let outcome = self
            .checker
            .run(
                self.kube(),
                Phase::PreUpgrade,
                &ctx,
                vec![],
                &self.up.overrides,
            )
            .await?;
        self.progress.event(Event::Checked(&outcome));
        if outcome.blocked {
            return Err(Exit::new(
                Code::Blocked,
                "blocked by a pre-upgrade check; nothing was changed",
            )
            .into());
        }
        Ok(outcome)
    }

    /// Capture the objects the run touches as they are now and record the run as pending:
    /// from here on a failure can always be undone.
    async fn begin(&self, planned: &Planned, pre_upgrade: &Outcome) -> anyhow::Result<Release> {
        let Planned {
            plan, pre, open, ..
        } = planned;
        // A run that resumes an unfinished one keeps that run's capture (the state before it).
        let captured = crate::engine::restore::capture(self.kube(), plan)
            .await?
            .under(open.as_ref().and_then(|o| o.captured.as_ref()));
        if let Some(mut o) = open.clone() {
            self.history
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
        let mut notes = self.up.overrides.describe(&overridden);
        notes.extend(self.checker.replacements());
        let mut rec = record(self.source.facts(), plan, notes);
        rec.captured = Some(captured);
        self.history.begin(rec).await.map_err(|e| {
            e.context("cannot record the state before the upgrade (needed to restore it); nothing was changed")
        })
    }

    /// Post-upgrade policies see the outcome either way; an error from them is a failure too.
    async fn post_upgrade_checks(
        &self,
        planned: &Planned,
        applied: &Result<apply::Report, apply::Failure>,
    ) -> anyhow::Result<Outcome> {
        let (ok, msg) = match applied {
            Ok(_) => (
                true,
                format!("control plane at {}", planned.plan.target_version),
            ),
            Err(f) => (false, f.to_string()),
        };
        let ctx = checks::context(
            Phase::PostUpgrade,
            &*self.source,
            &planned.installed,
            &planned.plan,
            Some((ok, msg)),
        )?;
        let post = self
            .checker
            .run(
                self.kube(),
                Phase::PostUpgrade,
                &ctx,
                vec![],
                &self.up.overrides,
            )
            .await?;
        self.progress.event(Event::Checked(&post));
        Ok(post)
    }

    /// Record the run as deployed and read the data plane it left behind.
    async fn deployed(
        &self,
        plan: &Plan,
        mut rec: Release,
        report: apply::Report,
        post: Outcome,
    ) -> anyhow::Result<Finished> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let description = format!(
            "{} to {} complete",
            capitalise(&plan.direction.to_string()),
            plan.target_version
        );
        self.history
            .finish(&mut rec, Status::Deployed, description)
            .await?;
        let namespace = &self.source.facts().namespace;
        let discovery = &self.source.facts().discovery;
        self.record_for_installers(plan).await;
        let message = completion(plan, &report, elapsed);
        let dp = dataplane::report(
            self.kube(),
            discovery,
            Some(plan.target_version.clone()),
            namespace,
        )
        .await?;
        let result = RunResult {
            status: "deployed".into(),
            revision: Some(rec.revision),
            seconds: elapsed,
            message,
            components: report.components,
            data_plane: Some(serde_json::to_value(&dp)?),
        };
        Ok((Code::Ok, result, post, Some(dp)))
    }

    /// The upgrade is done and recorded in meshup's history; each installer's own record
    /// follows. A stale record only misleads a later run of that installer, so failing to
    /// write it is said, not turned into a failure.
    async fn record_for_installers(&self, plan: &Plan) {
        let facts = self.source.facts();
        for installer in installers::all() {
            let written = installer
                .record(self.kube(), facts, &plan.profile, &plan.installer_spec)
                .await;
            if let Err(e) = written {
                self.progress.event(Event::Warning(&format!(
                    "{}'s own record could not be updated ({e:#}); {} will still see the previous release",
                    installer.name(),
                    installer.name()
                )));
            }
        }
    }

    /// After a failure: leave it (`--no-rollback`, recorded as failed) or put back the
    /// state captured before the run. Returns the exit code and what to tell.
    async fn recover(
        &self,
        plan: &Plan,
        rec: &mut Release,
        failure: &str,
    ) -> anyhow::Result<(Code, String)> {
        if self.up.no_rollback {
            let msg = format!(
                "{failure}; left as is (--no-rollback). The cluster is between {} and {}: run `meshup rollback` to restore, or fix and re-run the upgrade",
                plan.current_version.as_deref().unwrap_or("nothing"),
                plan.target_version
            );
            self.history
                .finish(rec, Status::Failed, msg.clone())
                .await?;
            return Ok((Code::NotRestored, msg));
        }
        let to = rec
            .captured
            .as_ref()
            .map(|c| c.describe())
            .unwrap_or_default();
        self.progress.event(Event::RollingBack {
            failure,
            to: &to,
            timeout: self.up.rollback_timeout,
        });
        let opts = apply::Options {
            readiness_timeout: self.up.rollback_timeout,
            interrupted: Arc::new(AtomicBool::new(false)),
        };
        let outcome = super::rollback::restore_run(
            self.kube(),
            &self.history,
            rec,
            Some(failure),
            &opts,
            self.progress,
        )
        .await?;
        let code = if outcome.code == Code::Ok {
            Code::RolledBack
        } else {
            Code::NotRestored
        };
        Ok((code, outcome.message))
    }
}

/// Server-side dry-run of every object: validation by the API server, nothing stored.
/// Objects in a namespace the plan itself creates cannot be checked before it exists.
async fn dry_run(cluster: &dyn Kube, plan: &Plan) -> anyhow::Result<(usize, usize)> {
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
async fn ensure_namespace(cluster: &dyn Kube, plan: &Plan) -> anyhow::Result<()> {
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

/// The closing line of a verified upgrade: the target and each component's readiness.
fn completion(plan: &Plan, report: &apply::Report, secs: f64) -> String {
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

fn record(facts: &Facts, plan: &Plan, overridden: Vec<String>) -> Release {
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
        bundle: facts.product.clone(),
        version: plan.target_version.clone(),
        digest: facts.digest.clone(),
        profile: plan.profile.clone(),
        profile_defaults: plan.profile_defaults.clone(),
        overlay: plan.overlay.clone(),
        values: plan.values.clone(),
        manifest: plan.rendered.manifest(),
        components: facts.components.clone(),
        namespace: facts.namespace.clone(),
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
