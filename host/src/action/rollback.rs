//! `meshup rollback [--to N]`, and the automatic restore of a failed upgrade (which is
//! this action, as Helm's failed upgrade calls its Rollback action).
//!
//! Two things can be put back:
//! - the state captured before an unfinished run (interrupted, or failed and not restored):
//!   the objects exactly as they were, whoever installed them;
//! - a recorded revision: its manifest re-applied, with the objects the live state has
//!   beyond it pruned.
//!
//! Either way the end state is read back and verified (every workload ready, every pod on
//! the expected images) before "rolled back" is said; otherwise exit 6 with what runs.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{Env, default_namespace, product};
use crate::base::exit::Code;
use crate::base::object::{ObjectKey, Rendered};
use crate::cluster::kube::Kube;
use crate::cluster::lock::Lock;
use crate::engine::apply::{self, Failure};
use crate::engine::progress::{Event, Progress};
use crate::engine::prune;
use crate::engine::restore;
use crate::installed::history::{self, Action, History, Release, Status};
use crate::installed::installer::End;
use crate::installed::installers;

pub struct Rollback {
    pub to: Option<u32>,
    pub namespace: Option<String>,
    pub yes: bool,
    pub readiness_timeout: Duration,
}

/// What a rollback puts back.
#[derive(Debug, Clone)]
pub enum Target {
    /// The state captured before this unfinished run (its own record).
    Capture(Release),
    /// A recorded revision, re-applied from its manifest.
    Revision(Release),
}

/// Why there is nothing to roll back to: the user's input (`--to`) or a history with no
/// earlier successful revision (exit 2, mapped in `cli::exit::code_of`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `--to N` names no recorded revision: pick one of `known` (`meshup history` lists them).
    #[error("no revision {revision} in history (known: {})", list(known))]
    NoSuchRevision { revision: u32, known: Vec<u32> },
    /// Nothing before the live revision succeeded, and no unfinished run to undo.
    #[error("no earlier successful revision to roll back to (see `meshup history`)")]
    NoEarlierRevision,
}

fn list(revisions: &[u32]) -> String {
    revisions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--to N` is that revision. Otherwise an unfinished run with a capture is undone, else the
/// newest successful revision before the live one is re-applied.
pub fn choose(all: &[Release], to: Option<u32>) -> Result<Target, Error> {
    if to.is_none()
        && let Some(open) = history::live(all).open.filter(|r| r.captured.is_some())
    {
        return Ok(Target::Capture(open));
    }
    choose_revision(all, to).map(Target::Revision)
}

fn choose_revision(all: &[Release], to: Option<u32>) -> Result<Release, Error> {
    if let Some(n) = to {
        return all
            .iter()
            .find(|r| r.revision == n)
            .cloned()
            .ok_or_else(|| Error::NoSuchRevision {
                revision: n,
                known: all.iter().map(|r| r.revision).collect(),
            });
    }
    let live = history::live(all);
    // A run that left the cluster between two versions (recorded before captures existed):
    // the live release is what to restore.
    if let (Some(d), Some(_)) = (&live.deployed, &live.open) {
        return Ok(d.clone());
    }
    let current = live.deployed.map(|d| d.revision);
    all.iter()
        .rev()
        .filter(|r| Some(r.revision) != current)
        .find(|r| matches!(r.status, Status::Superseded | Status::Deployed))
        .cloned()
        .ok_or(Error::NoEarlierRevision)
}

/// How a rollback ended, as read back from the cluster.
pub struct Outcome {
    pub code: Code,
    /// The status the history records for it.
    pub status: Status,
    /// The revision re-applied (`None`: a capture was put back).
    pub restored_revision: Option<u32>,
    /// The history revision that records the rollback (the restored run's own, for a capture).
    pub revision: u32,
    pub version: Option<String>,
    pub message: String,
}

/// What a rollback did, for the CLI to print.
pub struct Report {
    pub outcome: Outcome,
    /// The outcome's message, with the time taken when it succeeded.
    pub message: String,
}

impl Report {
    /// The JSON document of `rollback -o json`.
    pub fn doc(&self) -> serde_json::Value {
        serde_json::json!({
            "revision": self.outcome.revision,
            "restored_revision": self.outcome.restored_revision,
            "version": self.outcome.version,
            "status": self.outcome.status,
            "message": self.message,
        })
    }
}

impl Rollback {
    /// Choose what to put back, confirm, lock, put it back and verify it, record it.
    pub async fn run(&self, env: &Env, progress: &dyn Progress) -> anyhow::Result<Report> {
        let started = Instant::now();
        let ns = self.namespace.as_deref().unwrap_or(default_namespace());
        let conn = env.connect().await?;
        let kube = conn.kube.as_ref();
        let history = env.history(&conn, ns, product());
        let all = history.all().await?;
        let target = choose(&all, self.to)?;
        // A revision's manifests are parsed once: for the summary line and for the apply.
        let steps = match &target {
            Target::Revision(rev) => Some(revision_steps(&all, rev)?),
            Target::Capture(_) => None,
        };
        progress.event(Event::RollbackChosen(&describe(
            &all,
            &target,
            steps.as_ref(),
        )));
        let question = match &target {
            Target::Capture(r) => format!(
                "Restore the state before revision {} ({})?",
                r.revision,
                restore_label(r)
            ),
            Target::Revision(r) => {
                format!("Roll back to revision {} ({})?", r.revision, r.version)
            }
        };
        crate::engine::progress::confirmed(progress, self.yes, &question)?;
        let lock = Lock::acquire(conn.kube.clone(), ns, crate::cluster::lock::duration()).await?;
        if let Some(who) = &lock.took_over {
            progress.event(Event::LockTakenOver(who));
        }
        let opts = apply::Options {
            readiness_timeout: self.readiness_timeout,
            interrupted: Arc::new(AtomicBool::new(false)),
        };
        let reapplied: Option<(Vec<serde_json::Value>, String)> = match (&target, &steps) {
            (Target::Revision(rev), Some((rendered, _))) => Some((
                rendered.objects.iter().map(|o| o.value.clone()).collect(),
                rev.version.clone(),
            )),
            _ => None,
        };
        let outcome = match target {
            Target::Capture(mut run) => {
                restore_run(kube, &history, &mut run, None, &opts, progress).await
            }
            Target::Revision(rev) => {
                let steps = steps.expect("computed for a revision");
                let to = Revision {
                    kube,
                    history: &history,
                    all: &all,
                    rev: &rev,
                };
                to.apply(steps, &opts, progress).await
            }
        };
        let outcome = outcome?;
        let installers = Installers {
            kube,
            history_max: env.history_max,
            progress,
        };
        match &reapplied {
            Some((objects, version)) if outcome.code == Code::Ok => {
                installers.rolled_back(objects, version).await
            }
            Some(_) => {}
            None if outcome.code == Code::Ok => {
                installers
                    .settle(End::Restored {
                        failure: "interrupted",
                    })
                    .await
            }
            None => {
                installers
                    .settle(End::Failed {
                        message: &outcome.message,
                    })
                    .await
            }
        }
        super::release_lock(lock, progress).await;
        let message = if outcome.code == Code::Ok {
            format!(
                "{} in {:.1} s",
                outcome.message,
                started.elapsed().as_secs_f64()
            )
        } else {
            outcome.message.clone()
        };
        Ok(Report { outcome, message })
    }
}

/// The installers' own records after a rollback: a failure to write them is said, not
/// turned into a failure of the rollback, which is done and verified.
struct Installers<'a> {
    kube: &'a dyn Kube,
    history_max: usize,
    progress: &'a dyn Progress,
}

impl Installers<'_> {
    fn warn(&self, installer: &dyn crate::installed::installer::Installer, what: String) {
        self.progress.event(Event::Warning(&format!(
            "{}'s own record: {what}",
            installer.name()
        )));
    }

    async fn settle(&self, end: End<'_>) {
        for i in installers::all() {
            if let Err(e) = i.settle(self.kube, end, self.history_max).await {
                self.warn(
                    i,
                    format!(
                        "could not be brought up to date ({e:#}); the next meshup run finishes it"
                    ),
                );
            }
        }
    }

    async fn rolled_back(&self, objects: &[serde_json::Value], version: &str) {
        let objects: Vec<&serde_json::Value> = objects.iter().collect();
        for i in installers::all() {
            match i.rolled_back(self.kube, &objects, version, self.history_max).await {
                Ok(missing) if !missing.is_empty() => self.warn(
                    i,
                    format!(
                        "no revision of {version} found for {} (its records still name the release before the rollback); check with `helm history`",
                        missing.join(", ")
                    ),
                ),
                Ok(_) => {}
                Err(e) => self.warn(i, format!("could not record the rollback ({e:#})")),
            }
        }
    }
}

fn restore_label(run: &Release) -> String {
    match run.captured.as_ref().and_then(|c| c.version.clone()) {
        Some(v) => format!("back to {v}"),
        None => "nothing installed".into(),
    }
}

/// The one line that says what the rollback will do (after "Rollback:").
fn describe(all: &[Release], target: &Target, steps: Option<&Steps>) -> String {
    match target {
        Target::Capture(run) => {
            let snap = run.captured.as_ref().expect("chosen for its capture");
            format!(
                "revision {} ({} to {}, {}) is unfinished: putting back the {} objects it changed as they were before it ({}), removing the {} it created",
                run.revision,
                run.action,
                run.version,
                run.status,
                snap.objects.iter().filter(|c| c.before.is_some()).count(),
                snap.describe(),
                restore::created(snap).len()
            )
        }
        Target::Revision(rev) => {
            let (rendered, prune) = steps.expect("computed for a revision");
            let current = history::live(all).deployed;
            format!(
                "revision {} ({}) → revision {} ({}): {} objects to apply, {} to prune",
                current
                    .as_ref()
                    .map(|c| c.revision.to_string())
                    .unwrap_or_else(|| "-".into()),
                current
                    .as_ref()
                    .map(|c| c.version.as_str())
                    .unwrap_or("unknown"),
                rev.revision,
                rev.version,
                rendered.objects.len(),
                prune.len()
            )
        }
    }
}

/// Put back what `run` captured, verify it, and record the outcome on `run` itself:
/// `rolled-back`, or `failed` with what runs now and the next command.
pub async fn restore_run(
    cluster: &dyn Kube,
    history: &History,
    run: &mut Release,
    cause: Option<&str>,
    opts: &apply::Options,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let snapshot = run.captured.clone().unwrap_or_default();
    let layout = run.components.clone();
    let result = restore::restore(cluster, &snapshot, &layout, opts, progress).await;
    let (status, code, message) = match result {
        Ok(_) => (
            Status::RolledBack,
            Code::Ok,
            format!(
                "{}rolled back to {} (verified: every workload ready on its previous images)",
                prefix(cause),
                snapshot.describe()
            ),
        ),
        Err(f) => (
            Status::Failed,
            Code::NotRestored,
            not_restored(
                cluster,
                (&restore::workloads(&snapshot), snapshot.version.as_deref()),
                &snapshot.describe(),
                &f,
                cause,
                "`meshup rollback` retries the restore (after fixing the cause)",
            )
            .await,
        ),
    };
    history.finish(run, status, message.clone()).await?;
    Ok(Outcome {
        code,
        status,
        restored_revision: None,
        revision: run.revision,
        version: snapshot.version,
        message,
    })
}

/// Exit 6's message: what failed, what runs now (read back), and the next command.
/// `expected`: the workloads and the control plane's version they were to run.
async fn not_restored(
    cluster: &dyn Kube,
    expected: (&[apply::Workload], Option<&str>),
    to: &str,
    failure: &Failure,
    cause: Option<&str>,
    next: &str,
) -> String {
    let now = match apply::observe(cluster, expected.0, expected.1).await {
        Ok(obs) => obs
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("could not be read back ({e:#})"),
    };
    format!(
        "{}the rollback to {to} did not complete: {failure}. Now: {now}. Next: {next}; `meshup status` shows the control plane",
        prefix(cause)
    )
}

fn prefix(cause: Option<&str>) -> String {
    cause.map(|c| format!("{c}; ")).unwrap_or_default()
}

/// The manifest to re-apply for `rev`, and what the live state has beyond it to prune: the
/// live release's objects and those of an unfinished run on top of it.
/// What re-applying a revision does: its objects, and what to prune.
type Steps = (Rendered, Vec<ObjectKey>);

fn revision_steps(all: &[Release], rev: &Release) -> anyhow::Result<Steps> {
    let rendered = Rendered::from_manifest(&rev.manifest).map_err(|e| {
        anyhow::anyhow!("revision {}'s manifest is unreadable: {e:#}", rev.revision)
    })?;
    let keep: BTreeSet<ObjectKey> = rendered.objects.iter().map(|o| o.key()).collect();
    let live = history::live(all);
    let mut had = Vec::new();
    for r in [live.deployed, live.open].into_iter().flatten() {
        let objects = Rendered::from_manifest(&r.manifest).map_err(|e| {
            anyhow::anyhow!("revision {}'s manifest is unreadable: {e:#}", r.revision)
        })?;
        had.extend(objects.objects.iter().map(|o| o.key()));
    }
    Ok((rendered, prune::dropped(&had, &keep)))
}

/// Re-applying a recorded revision.
struct Revision<'a> {
    kube: &'a dyn Kube,
    history: &'a History,
    all: &'a [Release],
    rev: &'a Release,
}

impl Revision<'_> {
    /// Re-apply the revision as a new revision, capturing first so that it too can be undone.
    async fn apply(
        &self,
        (rendered, prune): Steps,
        opts: &apply::Options,
        progress: &dyn Progress,
    ) -> anyhow::Result<Outcome> {
        let rev = self.rev;
        let mut rec = self.begin(&rendered, &prune).await?;
        let target = apply::Target {
            layout: &rev.components,
            namespace: &rev.namespace,
            rendered: &rendered,
            prune: &prune,
            version: &rev.version,
        };
        let applied = apply::run(self.kube, &target, opts, progress).await;
        let (status, code, message) = match applied {
            Ok(_) => (
                Status::Deployed,
                Code::Ok,
                format!(
                    "control plane back at {} (revision {}, verified)",
                    rev.version, rev.revision
                ),
            ),
            Err(f) => {
                let expected = apply::workloads(rendered.objects.iter().map(|o| &o.value));
                let to = format!("revision {} ({})", rev.revision, rev.version);
                let next = format!(
                    "`meshup rollback --to {}` retries it; `meshup rollback` puts back the state before it",
                    rev.revision
                );
                let msg = not_restored(
                    self.kube,
                    (&expected, Some(&rev.version)),
                    &to,
                    &f,
                    None,
                    &next,
                )
                .await;
                (Status::Failed, Code::NotRestored, msg)
            }
        };
        self.history
            .finish(&mut rec, status, message.clone())
            .await?;
        Ok(Outcome {
            code,
            status,
            restored_revision: Some(rev.revision),
            revision: rec.revision,
            version: Some(rev.version.clone()),
            message,
        })
    }

    /// Close an unfinished run, capture what the rollback touches and record it as pending.
    async fn begin(&self, rendered: &Rendered, prune: &[ObjectKey]) -> anyhow::Result<Release> {
        let Revision {
            kube,
            history,
            all,
            rev,
        } = *self;
        let live = history::live(all);
        if let Some(mut open) = live.open.clone() {
            history
                .finish(
                    &mut open,
                    Status::Failed,
                    format!(
                        "unfinished; replaced by a rollback to revision {}",
                        rev.revision
                    ),
                )
                .await?;
        }
        let component_of = |key: &ObjectKey| {
            rendered
                .objects
                .iter()
                .find(|o| &o.key() == key)
                .map(|o| o.component.clone())
                .unwrap_or_default()
        };
        let touched = rendered
            .objects
            .iter()
            .map(|o| o.key())
            .chain(prune.iter().cloned())
            .map(|k| (k.clone(), component_of(&k)));
        let current_version = live.deployed.as_ref().map(|d| d.version.clone());
        let captured = restore::capture_keys(kube, touched, current_version).await?;
        history
            .begin(Release {
                action: Action::Rollback,
                description: format!("rollback to revision {} in progress", rev.revision),
                overridden: vec![],
                finished: None,
                captured: Some(captured),
                ..rev.clone()
            })
            .await
            .map_err(|e| {
                e.context("cannot record the rollback before starting it; nothing was changed")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(revision: u32, status: Status) -> Release {
        serde_json::from_value(serde_json::json!({
            "revision": revision, "action": "upgrade", "status": status, "bundle": "istio", "version": format!("1.{revision}.0"),
            "digest": "", "profile": "default", "profile_defaults": {}, "overlay": {}, "values": {}, "manifest": "",
            "namespace": "istio-system", "description": "", "started": ""
        }))
        .unwrap()
    }

    fn revision(t: Target) -> u32 {
        match t {
            Target::Revision(r) => r.revision,
            Target::Capture(r) => panic!("chose the capture of {}", r.revision),
        }
    }

    #[test]
    fn chooses_the_previous_successful_revision() {
        let all = vec![
            rel(1, Status::Superseded),
            rel(2, Status::RolledBack),
            rel(3, Status::Deployed),
        ];
        assert_eq!(revision(choose(&all, None).unwrap()), 1);
        assert_eq!(revision(choose(&all, Some(3)).unwrap()), 3);
        assert_eq!(
            choose(&all, Some(9)).unwrap_err().to_string(),
            "no revision 9 in history (known: 1, 2, 3)"
        );
        assert_eq!(
            choose(&[rel(1, Status::Deployed)], None).unwrap_err(),
            Error::NoEarlierRevision
        );
        let interrupted = vec![
            rel(1, Status::Superseded),
            rel(2, Status::Deployed),
            rel(3, Status::Pending),
        ];
        assert_eq!(revision(choose(&interrupted, None).unwrap()), 2);
    }

    #[test]
    fn an_unfinished_run_with_a_capture_is_undone() {
        let mut open = rel(3, Status::Failed);
        open.captured = Some(restore::Snapshot::default());
        let all = vec![rel(1, Status::Superseded), rel(2, Status::Deployed), open];
        assert!(matches!(choose(&all, None), Ok(Target::Capture(r)) if r.revision == 3));
        // `--to` always means a revision.
        assert_eq!(revision(choose(&all, Some(1)).unwrap()), 1);
        // An istioctl install: no deployed release at all, only the failed run.
        let mut only = rel(1, Status::Pending);
        only.captured = Some(restore::Snapshot::default());
        assert!(matches!(choose(&[only], None), Ok(Target::Capture(_))));
    }
}
