//! The policy configuration file (`--policy-config FILE`, YAML):
//!
//! ```yaml
//! include_defaults: true          # also run the default policies not listed below (default true)
//! limits: {time_ms: 1000, memory_mib: 64, findings: 1000, log_bytes: 65536}   # defaults for all
//!                                 # also the text bounds: findings_bytes, code_bytes, message_bytes,
//!                                 # subject_bytes, name_bytes, version_bytes, description_bytes
//! policies:
//!   - source: builtin:skew
//!     config: {max_minor: 1}
//!   - source: ./change_freeze.wasm  # relative to this file
//!     sha256: 0123…                 # required for files; a mismatch refuses the policy
//!     grants:                       # a subset of the reads it declares; default: what it declares
//!       - {apiVersion: v1, kind: ConfigMap, namespaces: [istio-system], names: [mesh-freeze]}
//!     enforce: warn                 # its errors become warnings (default: block)
//!     limits: {time_ms: 200}
//!   - source: ./our-skew.wasm       # may take the name of a builtin only by replacing it:
//!     sha256: 4567…
//!     replaces: builtin:skew        # builtin:skew then does not run (plan, history and audit say so)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::builtin;
use super::error::{Error, Refusal};
use super::grants::Grant;
use super::sandbox::Limits;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "yes")]
    include_defaults: bool,
    #[serde(default)]
    limits: Option<Value>,
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
    limits: Option<Value>,
    /// `builtin:NAME`: this file runs instead of that builtin (and may take its name).
    #[serde(default)]
    replaces: Option<String>,
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
    pub fn parse(s: &str, base: Option<&Path>) -> Result<Source, Error> {
        if let Some(name) = s.strip_prefix("builtin:") {
            if builtin::get(name).is_none() {
                let all: Vec<&str> = builtin::names().collect();
                return Err(Error::Reference(format!(
                    "unknown builtin policy {name:?}; builtins are {}",
                    all.join(", ")
                )));
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
    pub fn read(&self) -> Result<Vec<u8>, Refusal> {
        match self {
            Source::Builtin(n) => builtin::get(n)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Refusal(format!("unknown builtin {n}"))),
            Source::File(p) => {
                std::fs::read(p).map_err(|e| Refusal(format!("cannot read {}: {e}", p.display())))
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
    /// The builtin this file replaces (its name, without `builtin:`).
    pub replaces: Option<String>,
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
    pub fn load(path: &Path) -> Result<PolicyConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Validate the text of the configuration file at `path` (relative policy paths are
    /// resolved against its folder). Errors are [`Error::Config`]: they name the file, the
    /// entry (`policies[i] (SOURCE)`) and what to fix.
    pub fn parse(text: &str, path: &Path) -> Result<PolicyConfig, Error> {
        Self::parse_text(text, path).map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// `parse`, its message still to be placed in the file.
    fn parse_text(text: &str, path: &Path) -> Result<PolicyConfig, String> {
        let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let defaults = merge_limits(&Limits::default(), file.limits.as_ref())
            .map_err(|e| format!("limits: {e}"))?;
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
            let replaces = s
                .replaces
                .as_deref()
                .map(|r| replaced_builtin(r, &source))
                .transpose()
                .map_err(|e| format!("{at}: {e}"))?;
            let limits = merge_limits(&defaults, s.limits.as_ref())
                .map_err(|e| format!("{at}: limits: {e}"))?;
            entries.push(Entry {
                source,
                sha256: s.sha256.map(|d| d.to_ascii_lowercase()),
                config: s.config,
                grants: s.grants,
                enforce_warn: s.enforce == Enforce::Warn,
                limits,
                replaces,
                index: Some(i),
            });
        }
        check_replacements(&entries)?;
        if file.include_defaults {
            for name in builtin::names() {
                let listed = entries.iter().any(|e| {
                    e.source == Source::Builtin(name.into()) || e.replaces.as_deref() == Some(name)
                });
                if !listed {
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
        replaces: None,
        index: None,
    }
}

/// The builtin name of `replaces: builtin:NAME`, for a policy file only.
fn replaced_builtin(r: &str, source: &Source) -> Result<String, String> {
    if source.is_builtin() {
        return Err("replaces is for policy files; a builtin cannot replace another".into());
    }
    match Source::parse(r, None).map_err(|e| e.to_string())? {
        Source::Builtin(name) => Ok(name),
        Source::File(_) => Err(format!(
            "replaces must be `builtin:NAME`, got {r:?}; a file policy may replace only a builtin"
        )),
    }
}

/// A replaced builtin is replaced once and not listed itself.
fn check_replacements(entries: &[Entry]) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        let Some(name) = &e.replaces else { continue };
        let at = format!("policies[{}] ({})", e.index.unwrap_or(i), e.source);
        if entries
            .iter()
            .any(|o| o.source == Source::Builtin(name.clone()))
        {
            return Err(format!(
                "{at}: replaces builtin:{name}, which is also listed; remove one of them"
            ));
        }
        if entries[..i]
            .iter()
            .any(|o| o.replaces.as_deref() == Some(name))
        {
            return Err(format!(
                "{at}: builtin:{name} is already replaced by an earlier entry"
            ));
        }
    }
    Ok(())
}

/// `own` (a YAML mapping of some limit fields) over `base`; unknown fields are errors.
fn merge_limits(base: &Limits, own: Option<&Value>) -> Result<Limits, String> {
    let mut merged = serde_json::to_value(base).map_err(|e| e.to_string())?;
    match own {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (k, v) in fields {
                merged[k] = v.clone();
            }
        }
        Some(other) => return Err(format!("must be a mapping, got {other}")),
    }
    let limits: Limits = serde_json::from_value(merged).map_err(|e| e.to_string())?;
    validate_limits(&limits)?;
    Ok(limits)
}

fn validate_limits(l: &Limits) -> Result<(), String> {
    let check = |name: &str, v: u64, range: std::ops::RangeInclusive<u64>| {
        if range.contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "{name} must be {}..={}, got {v}",
                range.start(),
                range.end()
            ))
        }
    };
    check("time_ms", l.time_ms, 1..=60_000)?;
    check("memory_mib", l.memory_mib, 1..=4096)?;
    check("findings", l.findings as u64, 1..=100_000)?;
    check("findings_bytes", l.findings_bytes as u64, 1024..=(64 << 20))?;
    check("code_bytes", l.code_bytes as u64, 16..=1024)?;
    check("message_bytes", l.message_bytes as u64, 64..=(1 << 20))?;
    check("subject_bytes", l.subject_bytes as u64, 16..=(64 << 10))?;
    check("name_bytes", l.name_bytes as u64, 8..=255)?;
    check("version_bytes", l.version_bytes as u64, 8..=1024)?;
    check(
        "description_bytes",
        l.description_bytes as u64,
        64..=(64 << 10),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PolicyConfig, String> {
        PolicyConfig::parse(text, Path::new("/etc/meshup/policies.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_the_file() {
        let e = parse("policies: [{source: a.wasm, sha256: abc}]").unwrap_err();
        assert!(
            e.starts_with("policy configuration /etc/meshup/policies.yaml: policies[0] (a.wasm): sha256 must be 64 hex digits"),
            "{e}"
        );
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
        let e = parse("limits: {message_byte: 10}").unwrap_err();
        assert!(e.contains("unknown field `message_byte`"), "{e}");
        let e = parse("policies: [{source: builtin:pdb, limits: {code_bytes: 2}}]").unwrap_err();
        assert!(
            e.contains("policies[0] (builtin:pdb): limits: code_bytes"),
            "{e}"
        );
    }

    #[test]
    fn text_limits_merge_file_wide_then_per_policy() {
        let c = parse(
            "limits: {message_bytes: 1024, findings_bytes: 65536}\npolicies:\n  - source: builtin:skew\n    limits: {message_bytes: 2048}\n",
        )
        .unwrap();
        let skew = &c.entries[0].limits;
        assert_eq!(
            (skew.message_bytes, skew.findings_bytes, skew.code_bytes),
            (2048, 65536, 128)
        );
        let pdb = c
            .entries
            .iter()
            .find(|e| e.source == Source::Builtin("pdb".into()))
            .unwrap();
        assert_eq!(pdb.limits.message_bytes, 1024);
    }

    #[test]
    fn replaces_takes_the_builtin_out() {
        let pin = "0".repeat(64);
        let c = parse(&format!(
            "policies:\n  - source: our-skew.wasm\n    sha256: {pin}\n    replaces: builtin:skew\n"
        ))
        .unwrap();
        assert_eq!(c.entries[0].replaces.as_deref(), Some("skew"));
        assert!(
            !c.entries
                .iter()
                .any(|e| e.source == Source::Builtin("skew".into()))
        );
        assert_eq!(c.entries.len(), builtin::names().count());

        let e = parse(&format!(
            "policies:\n  - source: builtin:skew\n  - source: a.wasm\n    sha256: {pin}\n    replaces: builtin:skew\n"
        ))
        .unwrap_err();
        assert!(
            e.contains(
                "policies[1] (/etc/meshup/a.wasm): replaces builtin:skew, which is also listed"
            ),
            "{e}"
        );
        let e = parse(&format!(
            "policies:\n  - source: a.wasm\n    sha256: {pin}\n    replaces: builtin:nope\n"
        ))
        .unwrap_err();
        assert!(e.contains("unknown builtin policy \"nope\""), "{e}");
        let e = parse("policies: [{source: builtin:pdb, replaces: builtin:skew}]").unwrap_err();
        assert!(e.contains("replaces is for policy files"), "{e}");
        let e = parse(&format!(
            "policies:\n  - source: a.wasm\n    sha256: {pin}\n    replaces: builtin:skew\n  - source: b.wasm\n    sha256: {pin}\n    replaces: builtin:skew\n"
        ))
        .unwrap_err();
        assert!(e.contains("already replaced"), "{e}");
    }
}
