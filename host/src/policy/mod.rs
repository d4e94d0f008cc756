//! The policy runtime: sandboxed WebAssembly components (world `meshup:policy/policy`)
//! that check an upgrade. The upgrade flow uses [`PolicySet`]: `load` once, ask
//! `reads(phase)` what to snapshot, `evaluate(phase, ctx, &snapshot)` per phase.
//!
//! One concept per file: `context` (the context record), `snapshot` (cluster reads
//! from memory), `grants`, `sandbox` (host state, linker, import allow-list),
//! `runtime` (engine, load, one call), `cache` (precompiled artifacts), `config`
//! (the policy configuration file), `set` (the policies of a run), `audit` (JSON
//! lines), `replay`, `builtin` (embedded defaults), `commands` (`meshup policy …`).

pub mod audit;
pub mod builtin;
pub mod cache;
pub mod config;
pub mod context;
pub mod error;
pub mod grants;
pub mod replay;
pub mod runtime;
pub mod sandbox;
pub mod set;
pub mod snapshot;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use context::{
    ApplyOutcome, ComponentInfo, ComponentRole, Direction, Phase, PolicyContext, ReleaseSource,
    VersionRange,
};
pub use error::{Error, Refusal};
pub use grants::Grant;
pub use sandbox::Limits;
pub use set::PolicySet;
pub use snapshot::{ClusterReader, Snapshot};

/// How the runtime is set up.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Precompiled-artifact cache; `None` uses `MESHUP_CACHE_DIR`, `$XDG_CACHE_HOME/meshup` or `~/.cache/meshup`.
    pub cache_dir: Option<PathBuf>,
    /// Append one JSON line per evaluation here.
    pub audit_log: Option<PathBuf>,
}

/// How bad a finding is: the WIT enum itself.
pub use crate::base::wit::Severity;

/// One result of one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub policy: String,
    /// Where the policy comes from: `builtin`, `host`, or `file NAME sha256:PREFIX`.
    #[serde(default)]
    pub source: String,
    pub code: String,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// How an evaluation ended. Anything but `Ok` becomes a blocking `policy.failed` finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    /// The guest trapped (panic, stack overflow, …); `reason` includes its panic message.
    Trapped {
        reason: String,
    },
    TimedOut {
        limit_ms: u64,
    },
    OutOfMemory {
        limit_mib: u64,
    },
    /// Not run: not a component, forbidden imports, digest mismatch, …
    Refused {
        reason: String,
    },
    TooManyFindings {
        returned: usize,
        limit: usize,
    },
    /// Its findings, each cut to the field bounds, still total more than `limit` bytes.
    FindingsTooLarge {
        bytes: usize,
        limit: usize,
    },
}

impl Outcome {
    /// `ok`, `trapped`, `timed-out`, `out-of-memory`, `refused`, `too-many-findings`, `findings-too-large`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Trapped { .. } => "trapped",
            Outcome::TimedOut { .. } => "timed-out",
            Outcome::OutOfMemory { .. } => "out-of-memory",
            Outcome::Refused { .. } => "refused",
            Outcome::TooManyFindings { .. } => "too-many-findings",
            Outcome::FindingsTooLarge { .. } => "findings-too-large",
        }
    }

    /// A sentence: `trapped: wasm trap: …`, `timed out after 1000 ms`.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Trapped { reason } => format!("trapped: {reason}"),
            Outcome::TimedOut { limit_ms } => format!("timed out after {limit_ms} ms"),
            Outcome::OutOfMemory { limit_mib } => {
                format!("exceeded its memory limit of {limit_mib} MiB")
            }
            Outcome::Refused { reason } => format!("refused: {reason}"),
            Outcome::TooManyFindings { returned, limit } => {
                format!("returned {returned} findings, more than the limit of {limit}")
            }
            Outcome::FindingsTooLarge { bytes, limit } => {
                format!("returned {bytes} bytes of findings, more than the limit of {limit} bytes")
            }
        }
    }
}

/// The result of one policy in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub policy: String,
    /// `builtin` or `file NAME sha256:PREFIX` (as on each finding).
    pub source: String,
    pub digest: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    #[serde(rename = "duration_us", serialize_with = "micros")]
    pub duration: Duration,
    pub enforce_warn: bool,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl Evaluation {
    /// Whether any finding blocks the upgrade.
    pub fn blocks(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// The blocking finding that stands for a policy that did not run to completion.
/// `at` names the component (builtin or path), `origin` is the finding's `source`.
pub fn failed_finding(policy: &str, at: &str, origin: &str, outcome: &Outcome) -> Finding {
    Finding {
        policy: policy.to_string(),
        source: origin.to_string(),
        code: "policy.failed".into(),
        severity: Severity::Error,
        message: format!("policy {policy} ({at}) {}", outcome.describe()),
        remediation: Some(
            "fix the policy or remove it from the policy configuration; a policy that cannot run never passes an upgrade"
                .into(),
        ),
        subject: Some(format!("policy {policy}")),
    }
}
