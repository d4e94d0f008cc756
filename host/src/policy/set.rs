//! [`PolicySet`]: the policies of one run, loaded once and evaluated per phase.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::audit::{AuditLog, AuditRecord};
use super::cache;
use super::config::{Entry, PolicyConfig, Source};
use super::context::{Phase, PolicyContext, now_rfc3339};
use super::grants::{self, Grant};
use super::runtime::{Loaded, Run, Runtime};
use super::sandbox::Limits;
use super::snapshot::ClusterReader;
use super::{Evaluation, Outcome, RuntimeOptions, Severity, failed_finding};
use crate::exit::Exit;

/// One configured policy, loaded (or refused, with the reason).
pub struct Member {
    pub source: Source,
    /// The policy's metadata name, or the source when it could not be loaded.
    pub name: String,
    pub digest: String,
    pub loaded: Result<Loaded, String>,
    pub grants: Arc<Vec<Grant>>,
    pub config: Value,
    pub enforce_warn: bool,
    pub limits: Limits,
    /// The sha256 the configuration pins, if any.
    pub pin: Option<String>,
}

/// The policies of a run.
pub struct PolicySet {
    runtime: Runtime,
    members: Vec<Member>,
    audit: Option<AuditLog>,
}

impl PolicySet {
    /// Load the policy configuration (`None`: the default policies with their declared grants).
    /// A policy that cannot be loaded is kept as refused (it fails every phase);
    /// configuration mistakes are errors (exit 2).
    pub fn load(config: Option<&Path>, opts: RuntimeOptions) -> anyhow::Result<PolicySet> {
        let cfg = match config {
            Some(p) => PolicyConfig::load(p)?,
            None => PolicyConfig::defaults(),
        };
        let runtime = runtime_for(&opts)?;
        let audit = opts.audit_log.as_deref().map(AuditLog::open).transpose()?;
        let mut members = vec![];
        for entry in cfg.entries {
            let m = member(&runtime, entry).map_err(|e| match &cfg.path {
                Some(p) => anyhow::Error::from(Exit::bad_input(format!(
                    "policy configuration {}: {e}",
                    p.display()
                ))),
                None => anyhow::anyhow!("{e}"),
            })?;
            members.push(m);
        }
        Ok(PolicySet {
            runtime,
            members,
            audit,
        })
    }

    /// A set of exactly one policy (`meshup policy test`): grants are what it declares
    /// (Secrets only when declared by name).
    pub fn single(
        source: Source,
        config: Option<Value>,
        opts: RuntimeOptions,
    ) -> anyhow::Result<PolicySet> {
        let runtime = runtime_for(&opts)?;
        let audit = opts.audit_log.as_deref().map(AuditLog::open).transpose()?;
        let entry = Entry {
            source,
            sha256: None,
            config,
            grants: None,
            enforce_warn: false,
            limits: Limits::default(),
            index: None,
        };
        let m = member(&runtime, entry).map_err(Exit::bad_input)?;
        Ok(PolicySet {
            runtime,
            members: vec![m],
            audit,
        })
    }

    /// The policies, in evaluation order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What the host must snapshot before `evaluate(phase, …)`: (api_version, kind, namespaces; empty = all).
    pub fn reads(&self, phase: Phase) -> Vec<(String, String, Vec<String>)> {
        let mut out: Vec<(String, String, Vec<String>)> = vec![];
        for m in &self.members {
            let Ok(l) = &m.loaded else { continue };
            if !l.metadata.phases.contains(&phase) {
                continue;
            }
            for g in m.grants.iter() {
                match out
                    .iter_mut()
                    .find(|(a, k, _)| *a == g.api_version && *k == g.kind)
                {
                    Some((_, _, ns)) => {
                        if ns.is_empty() || g.namespaces.is_empty() {
                            ns.clear();
                        } else {
                            for n in &g.namespaces {
                                if !ns.contains(n) {
                                    ns.push(n.clone());
                                }
                            }
                        }
                    }
                    None => out.push((g.api_version.clone(), g.kind.clone(), g.namespaces.clone())),
                }
            }
        }
        out
    }

    /// Run every policy of `phase` (a refused policy, whose phases are unknown, in every
    /// phase). Never panics; a policy that fails yields a blocking
    /// `policy.failed` finding. Each evaluation is appended to the audit log.
    pub fn evaluate(
        &self,
        phase: Phase,
        ctx: &PolicyContext,
        cluster: &dyn ClusterReader,
    ) -> Vec<Evaluation> {
        self.run(phase, ctx, cluster, true)
    }

    /// Like `evaluate`, but also runs policies that do not declare `phase` (`meshup policy test`).
    pub fn evaluate_all(
        &self,
        phase: Phase,
        ctx: &PolicyContext,
        cluster: &dyn ClusterReader,
    ) -> Vec<Evaluation> {
        self.run(phase, ctx, cluster, false)
    }

    fn run(
        &self,
        phase: Phase,
        ctx: &PolicyContext,
        cluster: &dyn ClusterReader,
        by_phase: bool,
    ) -> Vec<Evaluation> {
        let mut ctx = ctx.clone();
        ctx.phase = phase;
        if ctx.now.is_empty() {
            ctx.now = now_rfc3339();
        }
        let mut out = vec![];
        for m in &self.members {
            if let Ok(l) = &m.loaded
                && by_phase
                && !l.metadata.phases.contains(&phase)
            {
                continue;
            }
            ctx.config = m.config.clone();
            let (eval, run) = evaluate_member(&self.runtime, m, &ctx, cluster);
            if let Some(log) = &self.audit {
                log.append(&AuditRecord::new(m, phase, &ctx, &eval, run.as_ref()));
            }
            out.push(eval);
        }
        out
    }
}

fn runtime_for(opts: &RuntimeOptions) -> anyhow::Result<Runtime> {
    let dir = if opts.no_cache {
        None
    } else {
        opts.cache_dir.clone().or_else(cache::default_dir)
    };
    Runtime::new(dir.as_deref())
}

/// Load one entry. `Err` only for configuration mistakes (grants beyond the declared reads).
pub(crate) fn member(runtime: &Runtime, e: Entry) -> Result<Member, String> {
    let at = match e.index {
        Some(i) => format!("policies[{i}] ({})", e.source),
        None => e.source.to_string(),
    };
    let bytes = e.source.read();
    let digest = bytes.as_deref().map(cache::sha256_hex).unwrap_or_default();
    let loaded = bytes.and_then(|b| match &e.sha256 {
        Some(pin) if *pin != digest => Err(format!(
            "sha256 mismatch: the file has {digest}, the policy configuration pins {pin}; the file was changed or the pin is stale"
        )),
        _ => runtime.load(&b),
    });
    let (name, grants, config) = match &loaded {
        Ok(l) => {
            let grants = match e.grants {
                Some(g) => {
                    grants::validate(&g, &l.metadata.reads)
                        .map_err(|err| format!("{at}: {err}"))?;
                    g
                }
                None => grants::default_grants(&l.metadata.reads),
            };
            (
                l.metadata.name.clone(),
                grants,
                e.config
                    .unwrap_or_else(|| l.metadata.default_config.clone()),
            )
        }
        Err(_) => (
            e.source.to_string(),
            vec![],
            e.config.unwrap_or(Value::Null),
        ),
    };
    Ok(Member {
        source: e.source,
        name,
        digest,
        loaded,
        grants: Arc::new(grants),
        config,
        enforce_warn: e.enforce_warn,
        limits: e.limits,
        pin: e.sha256,
    })
}

/// Evaluate one member against a context whose phase, config and now are set.
pub(crate) fn evaluate_member(
    runtime: &Runtime,
    m: &Member,
    ctx: &PolicyContext,
    cluster: &dyn ClusterReader,
) -> (Evaluation, Option<Run>) {
    let source = m.source.to_string();
    match &m.loaded {
        Err(reason) => {
            let outcome = Outcome::Refused {
                reason: reason.clone(),
            };
            let eval = Evaluation {
                policy: m.name.clone(),
                digest: m.digest.clone(),
                findings: vec![failed_finding(&m.name, &source, &outcome)],
                outcome,
                duration: Default::default(),
                enforce_warn: m.enforce_warn,
            };
            (eval, None)
        }
        Ok(l) => {
            let run =
                runtime.evaluate(l, m.grants.clone(), &m.limits, &ctx.to_wit(), Some(cluster));
            let findings = if run.outcome == Outcome::Ok {
                let mut f = run.findings.clone();
                if m.enforce_warn {
                    for x in f.iter_mut().filter(|x| x.severity == Severity::Error) {
                        x.severity = Severity::Warning;
                    }
                }
                f
            } else {
                vec![failed_finding(&m.name, &source, &run.outcome)]
            };
            let eval = Evaluation {
                policy: m.name.clone(),
                digest: m.digest.clone(),
                outcome: run.outcome.clone(),
                findings,
                duration: run.duration,
                enforce_warn: m.enforce_warn,
            };
            (eval, Some(run))
        }
    }
}
