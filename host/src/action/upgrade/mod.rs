//! `meshup install` and `meshup upgrade` (a downgrade is the same command with an
//! older bundle): plan, check, confirm, lock, apply component by component, verify,
//! prune, record; on failure restore the previous release.

mod change;
mod report;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{Env, product};
use crate::base::exit::{Code, Exit};
use crate::base::object::ObjectKey;
use crate::base::version::Direction;
use crate::cluster::client::FIELD_MANAGER;
use crate::cluster::kube::Kube;
use crate::cluster::lock::Lock;
use crate::cluster::permissions;
use crate::engine::apply;
use crate::engine::checks::{self, Checker, Outcome, Overrides};
use crate::engine::dataplane;
use crate::engine::plan::{self, DiffMode, Plan};
use crate::engine::progress::{Event, Progress};
use crate::engine::reverts::{self, InstalledIstioctl};
use crate::installed::history::{self, Action, History, Release, Status};
use crate::installed::installers;
use crate::installed::state::Installed;
use crate::policy::Phase;
use crate::release::source::Inputs;
use crate::release::source::{Facts, Source};

pub use report::{Report, RunResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Install,
    Upgrade,
    /// `meshup precheck`: plan and checks only.
    Precheck,
}

pub struct Upgrade {
    pub mode: Mode,
    pub target: crate::release::Target,
    pub inputs: Inputs,
    pub yes: bool,
    pub dry_run: bool,
    pub overrides: Overrides,
    pub readiness_timeout: Duration,
    pub rollback_timeout: Duration,
    pub no_rollback: bool,
    /// Which object diffs the plan shows.
    pub diff: DiffMode,
    /// `--from-istioctl`: the installed release's istioctl, to find what this run reverts
    /// of what was set at install (`engine::reverts`).
    pub from: Option<InstalledIstioctl>,
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
    /// Revisions kept in history, meshup's and an installer's own.
    history_max: usize,
}

impl Upgrade {
    /// The target release, validated before the cluster is touched (a new source is one
    /// more flag and one more `Target`).
    fn source(&self) -> anyhow::Result<Box<dyn Source>> {
        self.target.load()
    }

    /// Plan and check; then (unless only checking) confirm, lock, apply, verify and record,
    /// restoring the state before the run if it fails.
    pub async fn run(&self, env: &Env, progress: &dyn Progress) -> anyhow::Result<Report> {
        let started = Instant::now();
        // Everything the user typed is validated before the cluster is touched.
        let source = self.source()?;
        if let Some(from) = &self.from {
            from.check()?;
        }
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
            history_max: env.history_max,
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
                    "a control plane is already installed in {} (version {}); use `meshup upgrade {}`, or `meshup install --force` to reinstall over it",
                    installed.namespace,
                    present.unwrap_or("?"),
                    self.target
                ),
            )
            .into()),
            Mode::Upgrade if installed.control_planes.is_empty() => Err(Exit::bad_input(format!(
                "nothing to upgrade: no control plane in namespace {}; use `meshup install {}`",
                facts.namespace,
                self.target
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

impl Run<'_> {
    fn kube(&self) -> &dyn Kube {
        self.kube.as_ref()
    }

    /// Take the lock, make the change (or undo it), let the lock go, and report.
    async fn change(&self, planned: Planned) -> anyhow::Result<Report> {
        ensure_namespaces(self.kube(), &planned.plan).await?;
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
    /// Reads the caller may not make (a user bound to the built-in `view` role reads no
    /// Secrets, so no history) are skipped and named in a `permissions.missing` finding,
    /// which nothing waives: a plan with unknown parts is no basis for a change.
    async fn plan_and_check(&self) -> anyhow::Result<Planned> {
        let (up, source) = (self.up, &*self.source);
        let facts = source.facts();
        let reader = permissions::Reader::new(self.kube.clone());
        let (live, history_unreadable) = match self.history.live().await {
            Ok(live) => (live, false),
            Err(e) if history::is_forbidden(&e) => {
                reader.refusals.insert(permissions::Refused {
                    missing: permissions::Missing {
                        verb: "list".into(),
                        resource: "secrets".into(),
                        namespace: Some(facts.namespace.clone()),
                    },
                    why: "meshup's release history".into(),
                });
                (Default::default(), true)
            }
            Err(e) => return Err(e),
        };
        let discovery = &facts.discovery;
        reader.reading("what is installed");
        let mut installed =
            crate::installed::discover::read(&reader, discovery, &facts.namespace, live.deployed)
                .await?;
        installed.history_unreadable = history_unreadable;
        up.preconditions(&installed, facts)?;
        if let Some(open) = &live.open {
            self.progress.event(Event::Resuming {
                open,
                precheck: up.mode == Mode::Precheck,
            });
        }
        reader.reading("the plan's live objects");
        let plan = plan::build(&reader, source, &installed, &up.inputs).await?;
        let applied: Vec<ObjectKey> = plan.rendered.objects.iter().map(|o| o.key()).collect();
        let pruned: Vec<ObjectKey> = plan.prunes().map(|c| c.key.clone()).collect();
        let missing = permissions::missing(self.kube(), &applied, &pruned).await?;
        let ctx = checks::context(Phase::Precheck, source, &installed, &plan, None)?;
        let reverted = match &up.from {
            Some(from) => {
                reader.reading("the installed release, re-rendered by --from-istioctl");
                let found = reverts::find(&reader, from, &up.inputs, &installed).await?;
                reverts::findings(&found, &from.istioctl)
            }
            None => vec![],
        };
        let found = [
            checks::permission_findings(&missing, &[]),
            checks::rejection_findings(&plan),
            checks::cluster_specific_findings(&plan),
            checks::behaviour_findings(&plan),
            checks::helm_findings(&installed, &plan),
            checks::installer_findings(&installed, up.from.is_some()),
            reverted,
        ]
        .concat();
        reader.reading("what the policies read");
        let mut pre = self
            .checker
            .run(&reader, Phase::Precheck, &ctx, found, &up.overrides)
            .await?;
        let refused = reader.refusals.all();
        if !refused.is_empty() {
            let mut findings = checks::permission_findings(&[], &refused);
            findings.append(&mut pre.findings);
            pre = checks::decide(Phase::Precheck, findings, &up.overrides);
            pre.blocked = true;
            pre.overridden.retain(|c| c != "permissions.missing");
        }
        self.progress.event(Event::Planned {
            plan: &plan,
            installed: &installed,
            diffs: up.diff,
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
        let manager = installers::field_manager(&o.value);
        cluster.apply(&o.value, true, manager).await.map_err(|e| {
            Exit::bad_input(format!(
                "dry run: the API server rejects {}: {e:#}",
                o.key()
            ))
        })?;
        validated += 1;
    }
    Ok((validated, deferred))
}

/// The lock and history live in the control-plane namespace, and every component applies
/// into its own (a gateway's, beside it): on a first install each is created (from the
/// release's own Namespace object where it renders one, as `helm --create-namespace` would
/// otherwise) before anything else. Namespaces are never deleted, by a restore or a prune.
async fn ensure_namespaces(cluster: &dyn Kube, plan: &Plan) -> anyhow::Result<()> {
    let mut names = std::collections::BTreeSet::from([plan.namespace.clone()]);
    for o in &plan.rendered.objects {
        names.extend(o.namespace().map(str::to_string));
    }
    for name in names {
        let key = ObjectKey {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: name.clone(),
        };
        if cluster.get(&key).await?.is_some() {
            continue;
        }
        let ns = plan
            .rendered
            .objects
            .iter()
            .find(|o| o.key() == key)
            .map(|o| o.value.clone())
            .unwrap_or_else(|| serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
        cluster.apply(&ns, false, FIELD_MANAGER).await?;
    }
    Ok(())
}
