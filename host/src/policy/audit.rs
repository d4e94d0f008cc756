//! The audit log: one JSON line per evaluation, with everything needed to replay it
//! (the full context and every host call's answer, inline).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::context::{Phase, PolicyContext, now_rfc3339};
use super::grants::Grant;
use super::runtime::Run;
use super::sandbox::{HostCall, Limits, LogLine};
use super::set::Member;
use super::{Evaluation, Finding, Outcome};
use crate::exit::Exit;

/// One evaluation, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it was logged (RFC 3339).
    pub time: String,
    pub policy: String,
    /// `builtin:NAME` or the component's path.
    pub source: String,
    pub sha256: String,
    /// The sha256 the policy configuration pinned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_sha256: Option<String>,
    pub phase: Phase,
    /// Wall-clock time of the call, including instantiation (the budget is `limits.time_ms`).
    pub duration_us: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub enforce_warn: bool,
    pub limits: Limits,
    pub grants: Vec<Grant>,
    /// Every `cluster` call: what, allowed or denied, and the answer given.
    pub host_calls: Vec<HostCall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_truncated: bool,
    /// What the guest wrote to stderr (e.g. its panic message).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    pub findings: Vec<Finding>,
    /// The context as given to the policy (with its config and `now`).
    pub context: PolicyContext,
}

impl AuditRecord {
    pub(crate) fn new(
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
}

/// An append-only JSON-lines file.
pub struct AuditLog {
    file: Mutex<File>,
    path: std::path::PathBuf,
}

impl AuditLog {
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open audit log {}", path.display()))?;
        Ok(AuditLog {
            file: Mutex::new(file),
            path: path.to_path_buf(),
        })
    }

    /// Append one record as one line (one write, so concurrent appenders do not interleave).
    pub fn append(&self, rec: &AuditRecord) {
        let mut line = match serde_json::to_vec(rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot serialize audit record: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(&line) {
            tracing::error!("cannot append to audit log {}: {e}", self.path.display());
            eprintln!(
                "error: cannot append to audit log {}: {e}",
                self.path.display()
            );
        }
    }
}

/// Read the records of an audit log: (line number starting at 1, record).
pub fn read(path: &Path) -> anyhow::Result<Vec<(usize, AuditRecord)>> {
    let f = File::open(path)
        .map_err(|e| Exit::bad_input(format!("cannot open audit log {}: {e}", path.display())))?;
    let mut out = vec![];
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: AuditRecord = serde_json::from_str(&line).map_err(|e| {
            Exit::bad_input(format!("audit log {} line {}: {e}", path.display(), i + 1))
        })?;
        out.push((i + 1, rec));
    }
    Ok(out)
}
