//! The wasmtime side: one Engine (epoch interruption, one ticker thread), loading
//! components (cache, import check, `InstancePre`), and running one call in a fresh
//! Store with the time, memory, findings and log limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use super::bindings::{PolicyPre, meshup::policy::types as wit};
use super::cache::{Cache, sha256_hex};
use super::context::Phase;
use super::grants::Grant;
use super::sandbox::{self, HostCall, HostState, Limits, LogLine};
use super::snapshot::ClusterReader;
use super::{Finding, Outcome, Severity};

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
    pub fn compile(&self, bytes: &[u8], digest: &str) -> Result<Component, String> {
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

    /// Load a component: compile, refuse forbidden imports, pre-instantiate, read its metadata.
    pub fn load(&self, bytes: &[u8]) -> Result<Loaded, String> {
        let digest = sha256_hex(bytes);
        let component = self.compile(bytes, &digest)?;
        let (imports, exports) = self.interface(&component);
        sandbox::check_imports(&imports)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("cannot link: {e:#}"))?;
        let pre = PolicyPre::new(pre)
            .map_err(|e| format!("does not implement world meshup:policy/policy@0.2.0: {e:#}"))?;
        let limits = Limits::default();
        let (result, state, _) = self.call(
            &pre,
            "(metadata)",
            Arc::new(vec![]),
            &limits,
            None,
            |p, s| p.call_metadata(s),
        );
        let m = result.map_err(|e| {
            format!(
                "metadata() failed: {}",
                classify(e, &state, &limits).describe()
            )
        })?;
        let default_config = serde_json::from_str(&m.default_config)
            .map_err(|e| format!("metadata default-config is not JSON: {e}"))?;
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(format!(
                "metadata name {:?} must be lower-case letters, digits and dashes",
                m.name
            ));
        }
        let metadata = Metadata {
            name: m.name,
            version: m.version,
            description: m.description,
            phases: m.phases.into_iter().map(Phase::from_wit).collect(),
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
        cluster: Option<&dyn ClusterReader>,
        f: impl FnOnce(&super::bindings::Policy, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> (wasmtime::Result<R>, HostState, Duration) {
        let start = Instant::now();
        // The Store (and with it the lifetime-erased `cluster`) never leaves this function.
        let mut store = Store::new(
            &self.engine,
            HostState::new(policy, grants, cluster, limits),
        );
        store.limiter(|s| &mut s.limiter);
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
        cluster: Option<&dyn ClusterReader>,
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
            Ok(raw) => (
                Outcome::Ok,
                raw.into_iter()
                    .map(|f| Finding::from_wit(name, f))
                    .collect(),
            ),
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
    fn from_wit(policy: &str, f: wit::Finding) -> Finding {
        Finding {
            policy: policy.to_string(),
            code: f.code,
            severity: match f.severity {
                wit::Severity::Info => Severity::Info,
                wit::Severity::Warning => Severity::Warning,
                wit::Severity::Error => Severity::Error,
            },
            message: f.message,
            remediation: f.remediation,
            subject: f.subject,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_components_are_compiled() {
        let rt = Runtime::new(None).unwrap();
        let core = b"\0asm\x01\0\0\0";
        assert!(
            rt.compile(core, "x")
                .err()
                .unwrap()
                .contains("core WebAssembly module, not a component")
        );
        assert_eq!(
            rt.compile(b"hello", "x").err().unwrap(),
            "not a WebAssembly file"
        );
        assert!(
            rt.load(b"\0asm\x0d\0\x01\0garbage")
                .err()
                .unwrap()
                .starts_with("invalid component")
        );
    }
}
