//! The audit log: one JSON line per evaluation, with everything needed to replay it
//! (the full context and every host call's answer, inline).
//!
//! It is tamper-evident: each run starts with a header line naming the run, and every
//! line carries `prev`, the sha256 (hex) of the previous line's exact bytes (without its
//! newline; `null` for the first header). [`verify`] walks the chain and names the first
//! line where it breaks, so an edited, removed or reordered line is caught. The last line
//! is protected once another follows it: anchor the head digest [`verify`] reports.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::sha256_hex;
use super::context::{Phase, PolicyContext, now_rfc3339};
use super::grants::Grant;
use super::sandbox::{HostCall, Limits, LogLine};
use super::{Finding, Outcome};
use crate::base::exit::{Code, Exit};

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
    /// The builtin this file ran instead of (`replaces: builtin:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
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

/// The first line of each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `header`.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of the line before it (the end of an earlier run), `null` at the start of the file.
    pub prev: Option<String>,
    /// A random id of the run; every record of the run carries it.
    pub run: String,
    pub time: String,
    pub meshup_version: String,
    pub pid: u32,
    /// Builtins replaced by policy files in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
}

/// One record as written: the chain link and the run, then the record.
#[derive(Serialize)]
struct Chained<'a> {
    prev: &'a str,
    run: &'a str,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

/// The file and where the chain ends.
struct Tail {
    file: File,
    /// File length after our last write (another process may append in between).
    len: u64,
    /// sha256 of the last line.
    last: Option<String>,
}

/// An append-only, hash-chained JSON-lines file.
pub struct AuditLog {
    tail: Mutex<Tail>,
    path: std::path::PathBuf,
    run: String,
}

impl AuditLog {
    /// Open (or create) the log and write this run's header; `replaced` lists the builtins
    /// that policy files replace in this run.
    pub fn open(path: &Path, replaced: Vec<String>) -> anyhow::Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .with_context(|| format!("cannot open audit log {}", path.display()))?;
        let log = AuditLog {
            tail: Mutex::new(Tail {
                file,
                len: u64::MAX,
                last: None,
            }),
            path: path.to_path_buf(),
            run: format!("{:016x}", rand::random::<u64>()),
        };
        let header = |prev: Option<String>| Header {
            kind: "header".into(),
            prev,
            run: log.run.clone(),
            time: now_rfc3339(),
            meshup_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            replaced: replaced.clone(),
        };
        log.write_chained(|prev| serde_json::to_vec(&header(prev.map(String::from))))
            .with_context(|| format!("cannot write the header of audit log {}", path.display()))?;
        Ok(log)
    }

    /// The id of this run (in its header and on each of its records).
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Append one record as one line (one write, under an exclusive file lock, so
    /// concurrent appenders neither interleave nor fork the chain).
    pub fn append(&self, rec: &AuditRecord) {
        let written = self.write_chained(|prev| {
            serde_json::to_vec(&Chained {
                prev: prev.unwrap_or_default(),
                run: &self.run,
                record: rec,
            })
        });
        if let Err(e) = written {
            tracing::error!("cannot append to audit log {}: {e:#}", self.path.display());
            eprintln!(
                "error: cannot append to audit log {}: {e:#}",
                self.path.display()
            );
        }
    }

    /// Write the line `line(prev)` makes from the digest of the current last line.
    fn write_chained(
        &self,
        line: impl FnOnce(Option<&str>) -> serde_json::Result<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let mut t = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        t.file.lock()?;
        let result = (|| {
            let len = t.file.metadata()?.len();
            if len != t.len {
                t.last = last_line(&mut t.file)?.map(|l| sha256_hex(&l));
            }
            let mut bytes = line(t.last.as_deref())?;
            t.last = Some(sha256_hex(&bytes));
            bytes.push(b'\n');
            t.file.write_all(&bytes)?;
            t.len = len + bytes.len() as u64;
            anyhow::Ok(())
        })();
        let _ = t.file.unlock();
        result
    }
}

/// The last line of `f` (without its newline), `None` for an empty file.
fn last_line(f: &mut File) -> std::io::Result<Option<Vec<u8>>> {
    const STEP: u64 = 64 * 1024;
    let len = f.seek(SeekFrom::End(0))?;
    let mut pos = len;
    let mut tail: Vec<u8> = vec![];
    while pos > 0 {
        let step = STEP.min(pos);
        pos -= step;
        f.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0; step as usize];
        f.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(i) = body.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(body[i + 1..].to_vec()));
        }
    }
    Ok((len > 0).then(|| tail.strip_suffix(b"\n").unwrap_or(&tail).to_vec()))
}

/// A log whose chain is intact.
#[derive(Debug)]
pub struct Verified {
    /// (line number starting at 1, record), headers left out.
    pub records: Vec<(usize, AuditRecord)>,
    /// Runs (header lines) in the log.
    pub runs: usize,
    /// sha256 of the last line: keep it elsewhere to also protect the end of the log.
    pub head: String,
}

/// Check the hash chain of an audit log, then parse its records. A broken chain (or a
/// log without the header of a chained log) is exit 3, naming the first broken line.
pub fn verify(path: &Path) -> anyhow::Result<Verified> {
    let bytes = std::fs::read(path)
        .map_err(|e| Exit::bad_input(format!("cannot open audit log {}: {e}", path.display())))?;
    let broken = |line: usize, why: String| {
        anyhow::Error::from(Exit::new(
            Code::Blocked,
            format!(
                "audit log {} is not intact: line {line}: {why}; it was not replayed",
                path.display()
            ),
        ))
    };
    let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let mut prev: Option<String> = None;
    let mut out = Verified {
        records: vec![],
        runs: 0,
        head: String::new(),
    };
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| broken(n, format!("not a JSON line ({e})")))?;
        let is_header = v.get("type").and_then(Value::as_str) == Some("header");
        if n == 1 && !is_header {
            return Err(broken(
                1,
                "it is not a chain header: the log was written by a meshup without a hash chain, or its first lines were removed, so it cannot be verified (move it aside; the next run starts a new log)".into(),
            ));
        }
        let claimed = v.get("prev").and_then(Value::as_str);
        if claimed != prev.as_deref() {
            return Err(broken(
                n,
                format!(
                    "its prev does not match the sha256 of line {} (a line was edited, removed or reordered there)",
                    n - 1
                ),
            ));
        }
        if is_header {
            out.runs += 1;
        } else {
            let rec: AuditRecord =
                serde_json::from_value(v).map_err(|e| broken(n, format!("not a record ({e})")))?;
            out.records.push((n, rec));
        }
        prev = Some(sha256_hex(line));
    }
    out.head = prev.unwrap_or_default();
    Ok(out)
}

/// The records of an audit log whose chain is intact: (line number starting at 1, record).
pub fn read(path: &Path) -> anyhow::Result<Vec<(usize, AuditRecord)>> {
    Ok(verify(path)?.records)
}
