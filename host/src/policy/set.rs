//! [`PolicySet`]: the policies of one run, loaded once and evaluated per phase.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::audit::{AuditLog, AuditRecord};
use super::config::{Entry, PolicyConfig, Source};
use super::context::{Phase, PolicyContext, now_rfc3339};
use super::error::{self, Refusal};
use super::grants::{self, Grant};
use super::runtime::{Loaded, Run, Runtime};
use super::sandbox::Limits;
use super::snapshot::ClusterReader;
use super::{Evaluation, Finding, Outcome, RuntimeOptions, Severity, failed_finding};
use super::{builtin, cache};
use crate::base::text;

/// Why a configured policy cannot be set up: a mistake in its entry. `PolicySet` places it
/// (the policy configuration file: exit 2; a command-line policy: exit 2; the defaults:
/// a bug in meshup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Its `grants:` ask for what the policy does not declare (or a Secret without names).
    #[error("{at}: {cause}")]
    Grants {
        /// The entry: `policies[i] (SOURCE)`, or the source.
        at: String,
        /// What to fix in the grants. (Part of the message, not a source: the error is
        /// printed on its own, e.g. as a replay difference.)
        cause: grants::Error,
    },
}

/// One configured policy, loaded (or refused, with the reason).
pub struct Member {
    pub source: Source,
    /// The policy's metadata name, or the source when it could not be loaded.
    pub name: String,
    pub digest: String,
    pub loaded: Result<Loaded, Refusal>,
    pub grants: Arc<Vec<Grant>>,
    pub config: Value,
    pub enforce_warn: bool,
    pub limits: Limits,
    /// The sha256 the configuration pins, if any.
    pub pin: Option<String>,
    /// The builtin this file runs instead of (`replaces: builtin:NAME`).
    pub replaces: Option<String>,
}

impl Member {
    /// Where it comes from, as printed beside each finding: `builtin`, or
    /// `file NAME sha256:PREFIX` (the file name and the first 12 hex digits of its digest).
    pub fn origin(&self) -> String {
        match &self.source {
            Source::Builtin(_) => "builtin".into(),
            Source::File(p) => format!(
                "file {} sha256:{}",
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_else(|| p.to_string_lossy()),
                self.digest.get(..12).unwrap_or("-")
            ),
        }
    }

    /// `builtin:skew replaced by skew (file our-skew.wasm sha256:0123456789ab)`.
    pub fn replacement(&self) -> Option<String> {
        self.replaces
            .as_ref()
            .map(|b| format!("builtin:{b} replaced by {} ({})", self.name, self.origin()))
    }

    /// Refuse this member (it stays in the set and fails every phase).
    fn refuse(&mut self, reason: String) {
        self.name = self.source.to_string();
        self.grants = Arc::new(vec![]);
        self.loaded = Err(Refusal(reason));
    }
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
        let runtime = Runtime::with_options(&opts)?;
        let mut members = vec![];
        for entry in cfg.entries {
            let m = member(&runtime, entry).map_err(|e| match &cfg.path {
                Some(p) => anyhow::Error::from(error::Error::Config {
                    path: p.clone(),
                    message: e.to_string(),
                }),
                // The defaults are ours: a mistake in them is a bug, not the user's input
                // (`set::Error` maps to no exit code of its own: exit 1).
                None => anyhow::Error::from(e),
            })?;
            members.push(m);
        }
        claim_names(&mut members);
        let replaced = members.iter().filter_map(Member::replacement).collect();
        let audit = opts
            .audit_log
            .as_deref()
            .map(|p| AuditLog::open(p, replaced))
            .transpose()?;
        Ok(PolicySet {
            runtime,
            members,
            audit,
        })
    }

    /// `builtin:NAME replaced by …` for every file that replaces a builtin in this run.
    pub fn replacements(&self) -> Vec<String> {
        self.members
            .iter()
            .filter_map(Member::replacement)
            .collect()
    }

    /// A set of exactly one policy (`meshup policy test`): grants are what it declares
    /// (Secrets only when declared by name).
    pub fn single(
        source: Source,
        config: Option<Value>,
        opts: RuntimeOptions,
    ) -> anyhow::Result<PolicySet> {
        let runtime = Runtime::with_options(&opts)?;
        let audit = opts
            .audit_log
            .as_deref()
            .map(|p| AuditLog::open(p, vec![]))
            .transpose()?;
        let entry = Entry {
            source,
            sha256: None,
            config,
            grants: None,
            enforce_warn: false,
            limits: Limits::default(),
            replaces: None,
            index: None,
        };
        let m = member(&runtime, entry).map_err(|e| error::Error::Reference(e.to_string()))?;
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
        cluster: Arc<dyn ClusterReader>,
    ) -> Vec<Evaluation> {
        self.run(phase, ctx, cluster, true)
    }

    /// Like `evaluate`, but also runs policies that do not declare `phase` (`meshup policy test`).
    pub fn evaluate_all(
        &self,
        phase: Phase,
        ctx: &PolicyContext,
        cluster: Arc<dyn ClusterReader>,
    ) -> Vec<Evaluation> {
        self.run(phase, ctx, cluster, false)
    }

    fn run(
        &self,
        phase: Phase,
        ctx: &PolicyContext,
        cluster: Arc<dyn ClusterReader>,
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
            let (eval, run) = evaluate_member(&self.runtime, m, &ctx, cluster.clone());
            if let Some(log) = &self.audit {
                log.append(&audit_record(m, phase, &ctx, &eval, run.as_ref()));
            }
            out.push(eval);
        }
        out
    }
}

/// Load one entry. `Err` only for configuration mistakes (grants beyond the declared reads).
pub(crate) fn member(runtime: &Runtime, e: Entry) -> Result<Member, Error> {
    let at = match e.index {
        Some(i) => format!("policies[{i}] ({})", e.source),
        None => e.source.to_string(),
    };
    let bytes = e.source.read();
    let digest = bytes.as_deref().map(cache::sha256_hex).unwrap_or_default();
    let loaded = bytes.and_then(|b| match &e.sha256 {
        Some(pin) if *pin != digest => Err(Refusal(format!(
            "sha256 mismatch: the file has {digest}, the policy configuration pins {pin}; the file was changed or the pin is stale"
        ))),
        _ => runtime.load(&b, &e.limits),
    });
    let (name, grants, config) = match &loaded {
        Ok(l) => {
            let grants = match e.grants {
                Some(g) => {
                    grants::validate(&g, &l.metadata.reads)
                        .map_err(|cause| Error::Grants { at, cause })?;
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
        replaces: e.replaces,
    })
}

/// Policy names are identities, unique in a run: builtins keep theirs; a file may take a
/// builtin's name only when its entry `replaces` that builtin; of two files with one
/// name the first keeps it. A file that loses is refused (a blocking `policy.failed`).
fn claim_names(members: &mut [Member]) {
    let mut taken: Vec<(String, String)> = members
        .iter()
        .filter(|m| m.source.is_builtin() && m.loaded.is_ok())
        .map(|m| (m.name.clone(), m.source.to_string()))
        .collect();
    for m in members.iter_mut().filter(|m| !m.source.is_builtin()) {
        if m.loaded.is_err() {
            continue;
        }
        let name = m.name.clone();
        let refusal = if let Some((_, who)) = taken.iter().find(|(n, _)| *n == name) {
            let hint = if who.starts_with("builtin:") {
                format!("; to run it instead of the builtin, add `replaces: {who}` to its entry")
            } else {
                String::new()
            };
            Some(format!(
                "its name `{name}` is already taken by {who} in this run (policy names are unique){hint}"
            ))
        } else if builtin::get(&name).is_some() && m.replaces.as_deref() != Some(name.as_str()) {
            Some(format!(
                "its name `{name}` is the name of builtin:{name}; a policy file may take it only with `replaces: builtin:{name}` in its entry"
            ))
        } else {
            None
        };
        match refusal {
            Some(reason) => m.refuse(reason),
            None => taken.push((name, m.source.to_string())),
        }
    }
}

/// Whether `code` is `<policy>.<what>` with `<what>` of letters, digits, `.`, `_`, `-`.
fn own_code(policy: &str, code: &str) -> bool {
    code.strip_prefix(policy)
        .and_then(|rest| rest.strip_prefix('.'))
        .is_some_and(|what| {
            !what.is_empty()
                && what
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

/// What stands for a finding whose code is not the policy's own: a blocking
/// `policy.failed` naming the policy and (escaped, already bounded) the code.
fn foreign_code_finding(m: &Member, f: &Finding) -> Finding {
    let mut failed = failed_finding(&m.name, &m.source.to_string(), &m.origin(), &Outcome::Ok);
    failed.message = format!(
        "policy {} ({}) returned a finding with code `{}`, which is not `{}.<what>`: a policy reports only under its own name (the finding was dropped)",
        m.name,
        m.source,
        text::one_line(&f.code),
        m.name
    );
    failed
}

/// Evaluate one member against a context whose phase, config and now are set.
pub(crate) fn evaluate_member(
    runtime: &Runtime,
    m: &Member,
    ctx: &PolicyContext,
    cluster: Arc<dyn ClusterReader>,
) -> (Evaluation, Option<Run>) {
    let source = m.source.to_string();
    let origin = m.origin();
    match &m.loaded {
        Err(reason) => {
            let outcome = Outcome::Refused {
                reason: reason.to_string(),
            };
            let eval = Evaluation {
                policy: m.name.clone(),
                source: origin.clone(),
                digest: m.digest.clone(),
                findings: vec![failed_finding(&m.name, &source, &origin, &outcome)],
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
                for x in f.iter_mut() {
                    if !own_code(&m.name, &x.code) {
                        *x = foreign_code_finding(m, x);
                    }
                    x.source = origin.clone();
                }
                f
            } else {
                vec![failed_finding(&m.name, &source, &origin, &run.outcome)]
            };
            let eval = Evaluation {
                policy: m.name.clone(),
                source: origin,
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

/// The audit record of one member's evaluation.
fn audit_record(
    m: &Member,
    phase: Phase,
    ctx: &PolicyContext,
    eval: &Evaluation,
    run: Option<&Run>,
) -> AuditRecord {
    AuditRecord {
        time: now_rfc3339(),
        policy: m.name.clone(),
        source: match &m.source {
            super::config::Source::File(p) => std::fs::canonicalize(p)
                .unwrap_or(p.clone())
                .display()
                .to_string(),
            s => s.to_string(),
        },
        sha256: m.digest.clone(),
        pinned_sha256: m.pin.clone(),
        replaces: m.replaces.clone(),
        phase,
        duration_us: eval.duration.as_micros() as u64,
        outcome: eval.outcome.clone(),
        enforce_warn: m.enforce_warn,
        limits: m.limits,
        grants: m.grants.as_ref().clone(),
        host_calls: run.map(|r| r.calls.clone()).unwrap_or_default(),
        logs: run.map(|r| r.logs.clone()).unwrap_or_default(),
        log_truncated: run.is_some_and(|r| r.log_truncated),
        stderr: run.map(|r| r.stderr.clone()).unwrap_or_default(),
        findings: eval.findings.clone(),
        context: ctx.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::own_code;

    #[test]
    fn codes_are_the_policys_own() {
        assert!(own_code("skew", "skew.too-far"));
        assert!(own_code("change-freeze", "change-freeze.frozen_2.x"));
        for bad in [
            "skew.too-far",
            "skewer.x",
            "skew",
            "skew.",
            "skew.a b",
            "skew.\u{1b}[2K",
            "pdb.x",
        ] {
            assert!(
                !own_code(
                    if bad == "skew.too-far" {
                        "foreign"
                    } else {
                        "skew"
                    },
                    bad
                ),
                "{bad}"
            );
        }
    }
}
