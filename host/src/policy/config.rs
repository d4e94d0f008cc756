//! The policy configuration file (`--policy-config FILE`, YAML):
//!
//! ```yaml
//! include_defaults: true          # also run the default policies not listed below (default true)
//! limits: {time_ms: 1000, memory_mib: 64, findings: 1000, log_bytes: 65536}   # defaults for all
//! policies:
//!   - source: builtin:skew
//!     config: {max_minor: 1}
//!   - source: ./change_freeze.wasm  # relative to this file
//!     sha256: 0123…                 # required for files; a mismatch refuses the policy
//!     grants:                       # a subset of the reads it declares; default: what it declares
//!       - {apiVersion: v1, kind: ConfigMap, namespaces: [istio-system], names: [mesh-freeze]}
//!     enforce: warn                 # its errors become warnings (default: block)
//!     limits: {time_ms: 200}
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::builtin;
use super::grants::Grant;
use super::sandbox::Limits;
use crate::exit::Exit;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "yes")]
    include_defaults: bool,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    policies: Vec<Spec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    source: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    grants: Option<Vec<Grant>>,
    #[serde(default)]
    enforce: Enforce,
    #[serde(default)]
    limits: Option<Limits>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Enforce {
    #[default]
    Block,
    Warn,
}

/// Where a policy's component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin(String),
    File(PathBuf),
}

impl Source {
    /// `builtin:NAME` or a path.
    pub fn parse(s: &str, base: Option<&Path>) -> Result<Source, String> {
        if let Some(name) = s.strip_prefix("builtin:") {
            if builtin::get(name).is_none() {
                let all: Vec<&str> = builtin::names().collect();
                return Err(format!(
                    "unknown builtin policy {name:?}; builtins are {}",
                    all.join(", ")
                ));
            }
            return Ok(Source::Builtin(name.to_string()));
        }
        let p = PathBuf::from(s);
        Ok(Source::File(match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p,
        }))
    }

    /// The component bytes.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Source::Builtin(n) => builtin::get(n)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("unknown builtin {n}")),
            Source::File(p) => {
                std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
        }
    }

    pub fn is_builtin(&self) -> bool {
        matches!(self, Source::Builtin(_))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin(n) => write!(f, "builtin:{n}"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One policy to run, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub source: Source,
    pub sha256: Option<String>,
    pub config: Option<Value>,
    pub grants: Option<Vec<Grant>>,
    pub enforce_warn: bool,
    pub limits: Limits,
    /// `policies[i]` in the file, for error messages (`None` for implicit defaults).
    pub index: Option<usize>,
}

/// The parsed configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    pub path: Option<PathBuf>,
    pub entries: Vec<Entry>,
}

impl PolicyConfig {
    /// The default policies with the grants they declare.
    pub fn defaults() -> PolicyConfig {
        PolicyConfig {
            path: None,
            entries: builtin::names().map(default_entry).collect(),
        }
    }

    /// Read and validate a configuration file. Errors (exit 2) name the file and what to fix.
    pub fn load(path: &Path) -> anyhow::Result<PolicyConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Exit::bad_input(format!(
                "policy configuration {}: cannot read: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text, path).map_err(|e| {
            Exit::bad_input(format!("policy configuration {}: {e}", path.display())).into()
        })
    }

    pub fn parse(text: &str, path: &Path) -> Result<PolicyConfig, String> {
        let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let defaults = file.limits.unwrap_or_default();
        validate_limits(&defaults).map_err(|e| format!("limits: {e}"))?;
        let mut entries = vec![];
        for (i, s) in file.policies.into_iter().enumerate() {
            let at = format!("policies[{i}] ({})", s.source);
            let source = Source::parse(&s.source, Some(&base)).map_err(|e| format!("{at}: {e}"))?;
            match (&source, &s.sha256) {
                (Source::File(_), None) => {
                    return Err(format!(
                        "{at}: sha256 is required for a policy file; add `sha256: <digest>` (meshup policy inspect {} prints it)",
                        s.source
                    ));
                }
                (_, Some(d)) if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) => {
                    return Err(format!("{at}: sha256 must be 64 hex digits, got {d:?}"));
                }
                _ => {}
            }
            if entries.iter().any(|e: &Entry| e.source == source) {
                return Err(format!("{at}: listed twice"));
            }
            let limits = merge_limits(&defaults, s.limits);
            validate_limits(&limits).map_err(|e| format!("{at}: limits: {e}"))?;
            entries.push(Entry {
                source,
                sha256: s.sha256.map(|d| d.to_ascii_lowercase()),
                config: s.config,
                grants: s.grants,
                enforce_warn: s.enforce == Enforce::Warn,
                limits,
                index: Some(i),
            });
        }
        if file.include_defaults {
            for name in builtin::names() {
                if !entries
                    .iter()
                    .any(|e| e.source == Source::Builtin(name.into()))
                {
                    let mut e = default_entry(name);
                    e.limits = defaults;
                    entries.push(e);
                }
            }
        }
        Ok(PolicyConfig {
            path: Some(path.to_path_buf()),
            entries,
        })
    }
}

fn default_entry(name: &str) -> Entry {
    Entry {
        source: Source::Builtin(name.into()),
        sha256: None,
        config: None,
        grants: None,
        enforce_warn: false,
        limits: Limits::default(),
        index: None,
    }
}

fn merge_limits(defaults: &Limits, own: Option<Limits>) -> Limits {
    // serde fills unset fields of `own` with Limits::default(); take those from the file-wide defaults.
    let Some(o) = own else { return *defaults };
    let d = Limits::default();
    Limits {
        time_ms: if o.time_ms != d.time_ms {
            o.time_ms
        } else {
            defaults.time_ms
        },
        memory_mib: if o.memory_mib != d.memory_mib {
            o.memory_mib
        } else {
            defaults.memory_mib
        },
        findings: if o.findings != d.findings {
            o.findings
        } else {
            defaults.findings
        },
        log_bytes: if o.log_bytes != d.log_bytes {
            o.log_bytes
        } else {
            defaults.log_bytes
        },
    }
}

fn validate_limits(l: &Limits) -> Result<(), String> {
    if !(1..=60_000).contains(&l.time_ms) {
        return Err(format!("time_ms must be 1..=60000, got {}", l.time_ms));
    }
    if !(1..=4096).contains(&l.memory_mib) {
        return Err(format!("memory_mib must be 1..=4096, got {}", l.memory_mib));
    }
    if l.findings == 0 || l.findings > 100_000 {
        return Err(format!("findings must be 1..=100000, got {}", l.findings));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PolicyConfig, String> {
        PolicyConfig::parse(text, Path::new("/etc/meshup/policies.yaml"))
    }

    #[test]
    fn full_file() {
        let c = parse(
            "include_defaults: false\nlimits: {time_ms: 500}\npolicies:\n  - source: builtin:skew\n    config: {max_minor: 2}\n    enforce: warn\n  - source: freeze.wasm\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    grants: [{apiVersion: v1, kind: ConfigMap, namespaces: [x], names: [y]}]\n    limits: {memory_mib: 16}\n",
        )
        .unwrap();
        assert_eq!(c.entries.len(), 2);
        assert!(c.entries[0].enforce_warn);
        assert_eq!(c.entries[0].limits.time_ms, 500);
        assert_eq!(
            c.entries[1].source,
            Source::File("/etc/meshup/freeze.wasm".into())
        );
        assert_eq!(
            (c.entries[1].limits.time_ms, c.entries[1].limits.memory_mib),
            (500, 16)
        );
        assert_eq!(c.entries[1].grants.as_ref().unwrap()[0].names, ["y"]);
    }

    #[test]
    fn defaults_are_included_unless_disabled() {
        let c = parse("policies: [{source: builtin:pdb, enforce: warn}]\n").unwrap();
        assert_eq!(c.entries.len(), builtin::names().count());
        assert!(c.entries[0].enforce_warn);
        assert_eq!(
            PolicyConfig::defaults().entries.len(),
            builtin::names().count()
        );
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = parse("policies: [{source: x.wasm}]").unwrap_err();
        assert!(
            e.contains("policies[0] (x.wasm): sha256 is required"),
            "{e}"
        );
        let e = parse("policies: [{source: builtin:nope}]").unwrap_err();
        assert!(e.contains("unknown builtin policy \"nope\""), "{e}");
        let e = parse("policies: [{source: builtin:skew, enforce: maybe}]").unwrap_err();
        assert!(e.contains("enforce") || e.contains("maybe"), "{e}");
        let e = parse("polices: []").unwrap_err();
        assert!(e.contains("unknown field `polices`"), "{e}");
        let e = parse("policies: [{source: a.wasm, sha256: abc}]").unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
        let e = parse("limits: {time_ms: 0}").unwrap_err();
        assert!(e.contains("time_ms"), "{e}");
    }
}
