//! The change itself, under the lock: pre-upgrade checks, capture and the pending record,
//! ordered apply with watches, post-upgrade checks, then deployed (every installer's
//! record kept true) or the previous release put back.

use super::*;
use crate::base::text::capitalise;
use crate::installed::installer::End;

/// What a finished run returns: its code, result, post-upgrade findings and data plane.
type Finished = (Code, RunResult, Outcome, Option<dataplane::Report>);

impl Run<'_> {
    /// Everything done while holding the lock: last checks, record, apply, verify; then
    /// record the outcome, or restore the state before the run.
    pub(super) async fn locked(&self, planned: &Planned) -> anyhow::Result<Finished> {
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
        self.hold_for_installer(planned).await?;
        let begun = self.history.begin(rec).await.map_err(|e| {
            e.context("cannot record the state before the upgrade (needed to restore it); nothing was changed")
        });
        if begun.is_err() {
            self.settle_installers(End::Failed {
                message: "meshup could not record the run; nothing was changed",
            })
            .await;
        }
        begun
    }

    /// The owner installer's own hold on what the run changes (Helm's pending revision),
    /// taken before the first write: an error leaves nothing changed.
    async fn hold_for_installer(&self, planned: &Planned) -> anyhow::Result<()> {
        let Some(installer) = installers::owner(&planned.installed) else {
            return Ok(());
        };
        let plan = &planned.plan;
        let change = crate::installed::installer::Change {
            source: &*self.source,
            version: &plan.target_version,
            rendered: &plan.rendered,
            overlay: &plan.overlay,
        };
        installer
            .begin(self.kube(), &planned.installed, &change)
            .await
    }

    /// Every installer's holds finished as the run ended. A record left pending only
    /// blocks that installer until the next meshup run settles it, so a failure here is
    /// said, not turned into a failure of the run.
    pub(super) async fn settle_installers(&self, end: End<'_>) {
        for installer in installers::all() {
            if let Err(e) = installer.settle(self.kube(), end, self.history_max).await {
                self.progress.event(Event::Warning(&format!(
                    "{}'s own record could not be brought up to date ({e:#}); the next meshup run finishes it",
                    installer.name()
                )));
            }
        }
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
        self.settle_installers(End::Deployed).await;
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
            self.settle_installers(End::Failed { message: failure })
                .await;
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
        let outcome = crate::action::rollback::restore_run(
            self.kube(),
            &self.history,
            rec,
            Some(failure),
            &opts,
            self.progress,
        )
        .await?;
        let code = if outcome.code == Code::Ok {
            self.settle_installers(End::Restored { failure }).await;
            Code::RolledBack
        } else {
            self.settle_installers(End::Failed {
                message: &outcome.message,
            })
            .await;
            Code::NotRestored
        };
        Ok((code, outcome.message))
    }
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
