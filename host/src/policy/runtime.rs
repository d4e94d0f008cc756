//! The wasmtime side: one Engine (epoch interruption, one ticker thread), loading
//! components (cache, import check, `InstancePre`), and running one call in a fresh
//! Store with the time, memory, findings and log limits.

use super::error::Refusal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use super::cache::{Cache, sha256_hex};
use super::context::Phase;
use super::grants::Grant;
use super::sandbox::{self, HostCall, HostState, Limits, LogLine};
use super::snapshot::ClusterReader;
use super::{Finding, Outcome};
use crate::base::text;
use crate::base::wit::{PolicyPre, meshup::policy::types as wit};

/// Epoch tick of the deadline ticker.
pub const TICK: Duration = Duration::from_millis(2);

/// What a policy says about itself (host view of the WIT `metadata`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    pub phases: Vec<Phase>,
    pub reads: Vec<Grant>,
    pub default_config: Value,
}

/// A component ready to instantiate.
pub struct Loaded {
    pub digest: String,
    pub size: usize,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub metadata: Metadata,
    pre: PolicyPre<HostState>,
}

/// The result of one evaluation, before it becomes an `Evaluation`.
pub struct Run {
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    pub calls: Vec<HostCall>,
    pub logs: Vec<LogLine>,
    pub log_truncated: bool,
    pub stderr: String,
    pub duration: Duration,
}

/// Engine + linker (+ cache). Cheap to share by reference; evaluations are independent.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<Cache>,
}

fn engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(512 * 1024);
    Engine::new(&config).map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e}"))
}

/// One ticker thread per engine increments its epoch every `TICK`; it ends when the engine is dropped.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("meshup-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                match weak.upgrade() {
                    Some(e) => e.increment_epoch(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker: {e}; policies will not be interrupted");
    }
}

impl Runtime {
    /// A runtime; `cache` (if any) holds precompiled components.
    /// A runtime caching compiled components where `opts` says (else the default cache).
    pub fn with_options(opts: &super::RuntimeOptions) -> anyhow::Result<Runtime> {
        let dir = opts.cache_dir.clone().or_else(super::cache::default_dir);
        Runtime::new(dir.as_deref())
    }

    pub fn new(cache_dir: Option<&std::path::Path>) -> anyhow::Result<Runtime> {
        let engine = engine()?;
        start_ticker(&engine);
        let linker = sandbox::linker(&engine)
            .map_err(|e| anyhow::anyhow!("cannot link the sandbox: {e}"))?;
        let cache = cache_dir.and_then(|d| match Cache::open(d, &engine) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("{e}; compiling without a cache");
                None
            }
        });
        Ok(Runtime {
            engine,
            linker,
            cache,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compile (or load from the cache) a component. Refuses what is not a component.
    pub fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component, Refusal> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err("not a WebAssembly file".into());
        }
        if bytes[4..8] != [0x0d, 0x00, 0x01, 0x00] {
            return Err("a core WebAssembly module, not a component (build the policy with --target wasm32-wasip2)".into());
        }
        if let Some(c) = self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.engine, digest))
        {
            return Ok(c);
        }
        let component =
            Component::new(&self.engine, bytes).map_err(|e| format!("invalid component: {e:#}"))?;
        if let Some(c) = &self.cache {
            c.store(digest, &component);
        }
        Ok(component)
    }

    /// Import and export names of a compiled component.
    pub fn interface(&self, component: &Component) -> (Vec<String>, Vec<String>) {
        let ty = component.component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let exports = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        (imports, exports)
    }

    /// Load a component: compile, refuse forbidden imports, pre-instantiate, read its
    /// metadata (bounded by `limits`).
    pub fn load(&self, bytes: &[u8], limits: &Limits) -> Result<Loaded, Refusal> {
        let digest = sha256_hex(bytes);
        let component = self.compile(bytes, &digest)?;
        let (imports, exports) = self.interface(&component);
        let names: Vec<String> = imports.iter().chain(&exports).cloned().collect();
        sandbox::check_version(&names)?;
        sandbox::check_imports(&imports)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = PolicyPre::new(pre).map_err(|e| {
            format!(
                "does not implement world meshup:policy/policy@{}: {e:#}",
                crate::base::wit::VERSION
            )
        })?;
        let (result, state, _) = self.call(
            &pre,
            "(metadata)",
            Arc::new(vec![]),
            limits,
            None,
            |p, s| p.call_metadata(s),
        );
        let m = result.map_err(|e| {
            format!(
                "metadata() failed: {}",
                classify(e, &state, limits).describe()
            )
        })?;
        if m.default_config.len() > MAX_DEFAULT_CONFIG {
            return Err(format!(
                "metadata default-config is {} bytes, more than {MAX_DEFAULT_CONFIG}",
                m.default_config.len()
            )
            .into());
        }
        let default_config = serde_json::from_str(&m.default_config)
            .map_err(|e| format!("metadata default-config is not JSON: {e}"))?;
        check_name(&m.name, limits.name_bytes)?;
        check_reads(&m.reads)?;
        let metadata = Metadata {
            name: m.name,
            version: text::truncate(m.version, limits.version_bytes),
            description: text::truncate(m.description, limits.description_bytes),
            phases: m.phases.into_iter().fold(vec![], |mut seen, p| {
                // Each phase once, however often the guest lists it.
                if !seen.contains(&p) {
                    seen.push(p);
                }
                seen
            }),
            reads: m
                .reads
                .into_iter()
                .map(|r| Grant {
                    api_version: r.api_version,
                    kind: r.kind,
                    namespaces: r.namespaces,
                    names: r.names,
                })
                .collect(),
            default_config,
        };
        Ok(Loaded {
            digest,
            size: bytes.len(),
            imports,
            exports,
            metadata,
            pre,
        })
    }

    /// One call in a fresh Store with the limits applied.
    fn call<R>(
        &self,
        pre: &PolicyPre<HostState>,
        policy: &str,
        grants: Arc<Vec<Grant>>,
        limits: &Limits,
        cluster: Option<Arc<dyn ClusterReader>>,
        f: impl FnOnce(&crate::base::wit::Policy, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> (wasmtime::Result<R>, HostState, Duration) {
        let start = Instant::now();
        let mut store = Store::new(
            &self.engine,
            HostState::new(policy, grants, cluster, limits),
        );
        store.limiter(|s| &mut s.limiter);
        // The bytes wasmtime copies out of the guest in one lift (a result, or one host
        // call's arguments) never exceed its memory cap, whatever the guest's pointers alias.
        // Results cannot be read in place through `WasmStr` instead: wasmtime 48 runs the
        // guest's post-return (which frees them) inside `call`. So each field is cut right
        // after this bounded copy (`bounded_findings`), before anything keeps or logs it.
        store.set_hostcall_fuel(limits.memory_bytes());
        let ticks = limits.time_ms.div_ceil(TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let result = pre.instantiate(&mut store).and_then(|p| f(&p, &mut store));
        let duration = start.elapsed();
        (result, store.into_data(), duration)
    }

    /// Evaluate a loaded policy against a (WIT) context.
    pub fn evaluate(
        &self,
        loaded: &Loaded,
        grants: Arc<Vec<Grant>>,
        limits: &Limits,
        ctx: &wit::Context,
        cluster: Option<Arc<dyn ClusterReader>>,
    ) -> Run {
        let name = loaded.metadata.name.as_str();
        let (result, state, duration) =
            self.call(&loaded.pre, name, grants, limits, cluster, |p, s| {
                p.call_evaluate(s, ctx)
            });
        let stderr = state.stderr();
        let (outcome, findings) = match result {
            Err(e) => (classify(e, &state, limits), vec![]),
            Ok(raw) if raw.len() > limits.findings => (
                Outcome::TooManyFindings {
                    returned: raw.len(),
                    limit: limits.findings,
                },
                vec![],
            ),
            Ok(raw) => bounded_findings(name, raw, limits),
        };
        Run {
            outcome,
            findings,
            calls: state.calls,
            logs: state.logs,
            log_truncated: state.log_truncated,
            stderr,
            duration,
        }
    }
}

/// Bytes of a metadata `default-config` accepted.
const MAX_DEFAULT_CONFIG: usize = 64 * 1024;

/// Names whose codes are the host's own (`policy.failed`, `permissions.missing`, `plan.rejected`).
const RESERVED_NAMES: [&str; 4] = ["host", "policy", "permissions", "plan"];

/// A policy name is its identity: short, lower-case letters, digits and dashes; never cut;
/// never one of the host's.
fn check_name(name: &str, max: usize) -> Result<(), String> {
    if name.len() > max {
        return Err(format!(
            "metadata name is {} bytes, more than the limit of {max} ({:?}…)",
            name.len(),
            text::truncate(name.to_string(), 32)
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "metadata name {name:?} must be lower-case letters, digits and dashes"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "metadata name `{name}` is reserved for the host's own findings"
        ));
    }
    Ok(())
}

/// Reads a policy may declare, and namespaces plus names in one read.
const MAX_READS: usize = 100;

/// Declared reads name Kubernetes things: no field longer than a Kubernetes name (253
/// bytes), and not so many that the grants (copied into every audit record) flood the log.
fn check_reads(reads: &[wit::Read]) -> Result<(), String> {
    if reads.len() > MAX_READS {
        return Err(format!(
            "metadata declares {} reads, more than {MAX_READS}",
            reads.len()
        ));
    }
    if let Some(r) = reads
        .iter()
        .find(|r| r.namespaces.len() + r.names.len() > MAX_READS)
    {
        return Err(format!(
            "metadata declares a read of {} with {} namespaces and names, more than {MAX_READS}",
            text::truncate(r.kind.clone(), 64),
            r.namespaces.len() + r.names.len()
        ));
    }
    let fields = reads.iter().flat_map(|r| {
        [&r.api_version, &r.kind]
            .into_iter()
            .chain(&r.namespaces)
            .chain(&r.names)
    });
    match fields.map(String::len).max() {
        Some(n) if n > 253 => Err(format!(
            "metadata reads name something {n} bytes long; api versions, kinds, namespaces and names are at most 253 bytes"
        )),
        _ => Ok(()),
    }
}

/// Findings cut to the per-field bounds as they leave the guest; more than
/// `findings_bytes` in all fails the evaluation.
fn bounded_findings(
    policy: &str,
    raw: Vec<wit::Finding>,
    limits: &Limits,
) -> (Outcome, Vec<Finding>) {
    let mut total = 0usize;
    let mut out = Vec::with_capacity(raw.len());
    for f in raw {
        let f = Finding::from_wit(policy, f, limits);
        total += f.code.len()
            + f.message.len()
            + f.remediation.as_ref().map_or(0, String::len)
            + f.subject.as_ref().map_or(0, String::len);
        out.push(f);
    }
    if total > limits.findings_bytes {
        return (
            Outcome::FindingsTooLarge {
                bytes: total,
                limit: limits.findings_bytes,
            },
            vec![],
        );
    }
    (Outcome::Ok, out)
}

/// Turn a failed call into an outcome with a clear reason.
fn classify(err: wasmtime::Error, state: &HostState, limits: &Limits) -> Outcome {
    if state.limiter.hit {
        return Outcome::OutOfMemory {
            limit_mib: limits.memory_mib,
        };
    }
    let stderr = state.stderr();
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Outcome::TimedOut {
            limit_ms: limits.time_ms,
        },
        Some(trap) => {
            // A Rust panic prints "thread '…' panicked at FILE:LINE:COL:\nMESSAGE\nnote: …" to stderr.
            let text: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.starts_with("note: "))
                .collect();
            let text = text.join(" ");
            let reason = match text.find("panicked at") {
                Some(i) => text[i..].to_string(),
                None if !text.is_empty() => format!("{trap}: {text}"),
                None => trap.to_string(),
            };
            Outcome::Trapped { reason }
        }
        None => Outcome::Trapped {
            reason: format!("{err:#}").lines().next().unwrap_or("").to_string(),
        },
    }
}

impl Finding {
    /// The host's copy of a guest finding, each field cut to its bound at once.
    fn from_wit(policy: &str, f: wit::Finding, limits: &Limits) -> Finding {
        let message_bytes = limits.message_bytes;
        Finding {
            policy: policy.to_string(),
            source: String::new(),
            code: text::truncate(f.code, limits.code_bytes),
            severity: f.severity,
            message: text::truncate(f.message, message_bytes),
            remediation: f.remediation.map(|r| text::truncate(r, message_bytes)),
            subject: f.subject.map(|s| text::truncate(s, limits.subject_bytes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(code: &str, message: String) -> wit::Finding {
        wit::Finding {
            code: code.into(),
            severity: wit::Severity::Warning,
            message,
            remediation: Some("r".repeat(10_000)),
            subject: Some("s".repeat(600)),
        }
    }

    #[test]
    fn findings_are_cut_per_field_and_bounded_in_total() {
        let limits = Limits::default();
        let (o, f) = bounded_findings(
            "p",
            vec![raw(&"c".repeat(100 * 1024), "m".repeat(50 << 20))],
            &limits,
        );
        assert_eq!(o, Outcome::Ok);
        let f = &f[0];
        assert!(
            f.code.starts_with(&"c".repeat(128)) && f.code.ends_with("…(truncated, 102400 bytes)")
        );
        assert!(f.message.len() < 4200 && f.message.ends_with("(truncated, 52428800 bytes)"));
        assert!(
            f.remediation
                .as_ref()
                .unwrap()
                .ends_with("(truncated, 10000 bytes)")
        );
        assert!(f.subject.as_ref().unwrap().starts_with(&"s".repeat(512)));
        let many = (0..100).map(|_| raw("p.x", "m".repeat(4096))).collect();
        let (o, f) = bounded_findings("p", many, &limits);
        assert!(f.is_empty());
        assert!(
            o.describe().contains("more than the limit of 262144 bytes"),
            "{}",
            o.describe()
        );
        assert!(
            check_name(&"n".repeat(65), 64)
                .unwrap_err()
                .contains("65 bytes")
        );
        assert!(check_name("skew\u{1b}", 64).is_err());
        assert!(check_name("skew", 64).is_ok());
        assert!(check_name("policy", 64).unwrap_err().contains("reserved"));
        let read = |kind: &str, n: usize| wit::Read {
            api_version: "v1".into(),
            kind: kind.into(),
            namespaces: vec!["ns".into(); n],
            names: vec![],
        };
        assert!(check_reads(&[read("Pod", 3)]).is_ok());
        assert!(
            check_reads(&vec![read("Pod", 0); 101])
                .unwrap_err()
                .contains("101 reads")
        );
        assert!(
            check_reads(&[read("Pod", 101)])
                .unwrap_err()
                .contains("101 namespaces")
        );
        assert!(
            check_reads(&[read(&"K".repeat(254), 0)])
                .unwrap_err()
                .contains("254 bytes")
        );
    }

    #[test]
    fn only_components_are_compiled() {
        let rt = Runtime::new(None).unwrap();
        let core = b"\0asm\x01\0\0\0";
        assert!(
            rt.compile(core, "x")
                .err()
                .unwrap()
                .0
                .contains("core WebAssembly module, not a component")
        );
        assert_eq!(
            rt.compile(b"hello", "x").err().unwrap().0,
            "not a WebAssembly file"
        );
        assert!(
            rt.load(b"\0asm\x0d\0\x01\0garbage", &Limits::default())
                .err()
                .unwrap()
                .0
                .starts_with("invalid component")
        );
    }
}
