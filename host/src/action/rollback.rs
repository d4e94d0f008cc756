//! `meshup rollback [--to N]`: re-apply a recorded revision's manifest exactly, with the
//! same waiting, verification and pruning as an upgrade, and record the rollback.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::{DEFAULT_NAMESPACE, Env, PRODUCT, print_json};
use crate::apply;
use crate::exit::{Code, Exit};
use crate::history::{Action, Release, Status};
use crate::lock::Lock;
use crate::render::{ObjectKey, Rendered};
use crate::ui::Color;

pub struct Rollback {
    pub to: Option<u32>,
    pub namespace: Option<String>,
    pub yes: bool,
    pub readiness_timeout: Duration,
}

/// The revision to go back to: `--to N`, else the newest successful one before the live one.
pub fn choose(all: &[Release], to: Option<u32>) -> Result<Release, String> {
    if let Some(n) = to {
        return all
            .iter()
            .find(|r| r.revision == n)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<String> = all.iter().map(|r| r.revision.to_string()).collect();
                format!("no revision {n} in history (known: {})", known.join(", "))
            });
    }
    let live = all
        .iter()
        .rev()
        .find(|r| r.status == Status::Deployed)
        .map(|r| r.revision);
    // A run interrupted or failed (not restored) after the live release left the cluster
    // between two versions: the live release is what to restore.
    let pending = all
        .iter()
        .rev()
        .find(|r| matches!(r.status, Status::Pending | Status::Failed))
        .map(|r| r.revision);
    if let (Some(l), Some(p)) = (live, pending) {
        if p > l {
            return all
                .iter()
                .find(|r| r.revision == l)
                .cloned()
                .ok_or_else(|| "live release vanished".into());
        }
    }
    all.iter()
        .rev()
        .filter(|r| Some(r.revision) != live)
        .find(|r| matches!(r.status, Status::Superseded | Status::Deployed))
        .cloned()
        .ok_or_else(|| {
            "no earlier successful revision to roll back to (see `meshup history`)".into()
        })
}

impl Rollback {
    pub async fn run(&self, env: &Env) -> anyhow::Result<Code> {
        let started = Instant::now();
        let ui = &env.ui;
        let ns = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        let cluster = env.connect().await?;
        let history = env.history(&cluster, ns, PRODUCT);
        let all = history.all().await?;
        let target = choose(&all, self.to).map_err(Exit::bad_input)?;
        // What runs now: the live release, or an interrupted or failed run on top of it.
        let current = all
            .last()
            .filter(|r| matches!(r.status, Status::Pending | Status::Failed))
            .cloned()
            .or_else(|| {
                all.iter()
                    .rev()
                    .find(|r| r.status == Status::Deployed)
                    .cloned()
            });
        let rendered = Rendered::from_manifest(&target.manifest)?;
        let keep: BTreeSet<ObjectKey> = rendered.objects.iter().map(|o| o.key()).collect();
        // Objects of the live release (or an interrupted one) that the target does not have.
        let mut prune: Vec<ObjectKey> = Vec::new();
        for r in all.iter().filter(|r| {
            r.status == Status::Pending || Some(r.revision) == current.as_ref().map(|c| c.revision)
        }) {
            for o in Rendered::from_manifest(&r.manifest)?.objects {
                let k = o.key();
                if !keep.contains(&k)
                    && !matches!(k.kind.as_str(), "CustomResourceDefinition" | "Namespace")
                    && !prune.contains(&k)
                {
                    prune.push(k);
                }
            }
        }
        ui.say(format!(
            "{} revision {} ({}) → revision {} ({}): {} objects to apply, {} to prune",
            ui.paint("Rollback:", Color::Bold),
            current
                .as_ref()
                .map(|c| c.revision.to_string())
                .unwrap_or_else(|| "-".into()),
            current
                .as_ref()
                .map(|c| c.version.as_str())
                .unwrap_or("unknown"),
            target.revision,
            target.version,
            rendered.objects.len(),
            prune.len()
        ));
        super::prompt::confirm(
            self.yes,
            &format!(
                "Roll back to revision {} ({})?",
                target.revision, target.version
            ),
        )?;
        let lock = Lock::acquire(cluster.client().clone(), ns, crate::lock::duration()).await?;
        if let Some(who) = &lock.took_over {
            ui.warn(format!("took over the expired upgrade lock of {who}"));
        }
        let result = async {
            for mut p in history
                .all()
                .await?
                .into_iter()
                .filter(|r| r.status == Status::Pending)
            {
                history
                    .finish(
                        &mut p,
                        Status::Failed,
                        "interrupted; rolled back by a later run".into(),
                    )
                    .await?;
            }
            let mut rec = Release {
                action: Action::Rollback,
                description: format!("rollback to revision {} in progress", target.revision),
                overridden: vec![],
                finished: None,
                ..target.clone()
            };
            rec = history.begin(rec).await?;
            let opts = apply::Options {
                readiness_timeout: self.readiness_timeout,
                interrupted: Arc::new(AtomicBool::new(false)),
            };
            match apply::run(
                &cluster,
                &target.components,
                &target.namespace,
                &rendered,
                &prune,
                &target.version,
                &opts,
                ui,
            )
            .await
            {
                Ok(report) => {
                    let msg = format!(
                        "Rollback to revision {} ({})",
                        target.revision, target.version
                    );
                    history.finish(&mut rec, Status::Deployed, msg).await?;
                    anyhow::Ok((Code::Ok, rec.revision, report.seconds, None))
                }
                Err(f) => {
                    let msg = format!("rollback to revision {} failed: {f}", target.revision);
                    history
                        .finish(&mut rec, Status::Failed, msg.clone())
                        .await?;
                    anyhow::Ok((Code::NotRestored, rec.revision, 0.0, Some(msg)))
                }
            }
        }
        .await;
        lock.release().await?;
        let (code, revision, _, failure) = result?;
        let message = match &failure {
            None => format!(
                "control plane back at {} (revision {revision}) in {:.1} s",
                target.version,
                started.elapsed().as_secs_f64()
            ),
            Some(m) => format!(
                "{m}; check `meshup status` and retry `meshup rollback --to {}`",
                target.revision
            ),
        };
        if ui.json() {
            print_json(
                &serde_json::json!({"revision": revision, "restored_revision": target.revision,
                "version": target.version, "status": if failure.is_none() { "deployed" } else { "failed" }, "message": message}),
            )?;
        } else {
            ui.say(ui.paint(
                &message,
                if failure.is_none() {
                    Color::Green
                } else {
                    Color::Red
                },
            ));
        }
        Ok(code)
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

    #[test]
    fn chooses_the_previous_successful_revision() {
        let all = vec![
            rel(1, Status::Superseded),
            rel(2, Status::RolledBack),
            rel(3, Status::Deployed),
        ];
        assert_eq!(choose(&all, None).unwrap().revision, 1);
        assert_eq!(choose(&all, Some(3)).unwrap().revision, 3);
        assert!(
            choose(&all, Some(9))
                .unwrap_err()
                .contains("known: 1, 2, 3")
        );
        assert!(choose(&[rel(1, Status::Deployed)], None).is_err());
        let interrupted = vec![
            rel(1, Status::Superseded),
            rel(2, Status::Deployed),
            rel(3, Status::Pending),
        ];
        assert_eq!(choose(&interrupted, None).unwrap().revision, 2);
    }
}
