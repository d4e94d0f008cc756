//! Replay logged evaluations: an evaluation is a pure function of the context and
//! the answers to its host calls, both stored in the audit log.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::audit::{self, AuditRecord};
use super::config::Entry;
use super::config::Source;
use super::runtime::Runtime;
use super::set::{evaluate_member, member};
use super::snapshot::ClusterReader;
use crate::base::exit::Exit;

/// Answers host calls from the recorded ones.
pub struct Recorded(pub Vec<super::sandbox::HostCall>);

impl Recorded {
    fn find(
        &self,
        op: &str,
        api: &str,
        kind: &str,
        ns: Option<&str>,
        name: Option<&str>,
        sel: Option<&str>,
    ) -> Result<Value, String> {
        let c = self
            .0
            .iter()
            .find(|c| {
                c.allowed
                    && c.op == op
                    && c.api_version == api
                    && c.kind == kind
                    && c.namespace.as_deref() == ns
                    && c.name.as_deref() == name
                    && c.label_selector.as_deref() == sel
            })
            .ok_or_else(|| format!("replay: no recorded answer for {op} {api} {kind}"))?;
        match (&c.result, &c.error) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Ok(Value::Null),
        }
    }
}

impl ClusterReader for Recorded {
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String> {
        self.find("get", api_version, kind, namespace, Some(name), None)
            .map(|v| if v.is_null() { None } else { Some(v) })
    }
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        self.find("list", api_version, kind, namespace, None, label_selector)
            .map(|v| v.as_array().cloned().unwrap_or_default())
    }
}

/// The verdict on one logged evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub line: usize,
    pub policy: String,
    pub phase: String,
    pub identical: bool,
    /// What differs, when not identical.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
    pub findings: usize,
}

/// Verify the chain of `log`, then re-run its records (or only line `line`) and compare.
pub fn replay(runtime: &Runtime, log: &Path, line: Option<usize>) -> anyhow::Result<Vec<Replayed>> {
    replay_records(runtime, log, audit::read(log)?, line)
}

/// Re-run `records` (verified records of `log`), or only line `line`, and compare.
pub fn replay_records(
    runtime: &Runtime,
    log: &Path,
    records: Vec<(usize, AuditRecord)>,
    line: Option<usize>,
) -> anyhow::Result<Vec<Replayed>> {
    let selected: Vec<(usize, AuditRecord)> = match line {
        Some(n) => {
            let r = records
                .into_iter()
                .filter(|(l, _)| *l == n)
                .collect::<Vec<_>>();
            if r.is_empty() {
                return Err(Exit::bad_input(format!(
                    "audit log {} has no record on line {n}",
                    log.display()
                ))
                .into());
            }
            r
        }
        None => records,
    };
    Ok(selected
        .into_iter()
        .map(|(n, rec)| replay_one(runtime, n, rec))
        .collect())
}

fn replay_one(runtime: &Runtime, line: usize, rec: AuditRecord) -> Replayed {
    let mut differences = vec![];
    let source = Source::parse(&rec.source, None)
        .unwrap_or_else(|_| Source::File(rec.source.clone().into()));
    let entry = Entry {
        source,
        sha256: rec.pinned_sha256.clone(),
        config: Some(rec.context.config.clone()),
        grants: Some(rec.grants.clone()),
        enforce_warn: rec.enforce_warn,
        limits: rec.limits,
        replaces: rec.replaces.clone(),
        index: None,
    };
    let verdict = |differences: Vec<String>| Replayed {
        line,
        policy: rec.policy.clone(),
        phase: rec.phase.to_string(),
        identical: differences.is_empty(),
        differences,
        findings: rec.findings.len(),
    };
    let member = match member(runtime, entry) {
        Ok(m) => m,
        Err(e) => return verdict(vec![e.to_string()]),
    };
    if member.digest != rec.sha256 {
        return verdict(vec![format!(
            "component changed: {} now has sha256 {}, the log recorded {}",
            rec.source, member.digest, rec.sha256
        )]);
    }
    let cluster = Arc::new(Recorded(rec.host_calls.clone()));
    let (eval, run) = evaluate_member(runtime, &member, &rec.context, cluster);
    if eval.outcome.label() != rec.outcome.label() {
        differences.push(format!(
            "outcome {} (logged {})",
            eval.outcome.label(),
            rec.outcome.label()
        ));
    }
    if eval.findings != rec.findings {
        differences.push(format!(
            "{} findings differ from the {} logged",
            eval.findings.len(),
            rec.findings.len()
        ));
    }
    let shape = |c: &super::sandbox::HostCall| {
        (
            c.op.clone(),
            c.kind.clone(),
            c.namespace.clone(),
            c.name.clone(),
            c.allowed,
            c.result.clone().filter(|v| !v.is_null()),
        )
    };
    let calls: Vec<_> = run
        .map(|r| r.calls.iter().map(shape).collect())
        .unwrap_or_default();
    if calls != rec.host_calls.iter().map(shape).collect::<Vec<_>>() {
        differences.push("host calls differ".into());
    }
    verdict(differences)
}
