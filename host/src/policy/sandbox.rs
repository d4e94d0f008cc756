//! The deny-by-default sandbox: per-evaluation host state, the linker with exactly
//! the allowed imports, and the import check that refuses anything else up front.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime::StoreContextMut;
use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable, WasmStr};
use wasmtime::{Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::grants::{self, Grant, Request};
use super::snapshot::ClusterReader;
use crate::base::text;
use crate::base::wit::meshup::policy as wit;

/// The WASI interfaces a Rust `wasm32-wasip2` std guest imports (and never calls
/// unless it panics). They are satisfied by an empty WASI context.
pub const ALLOWED_WASI: [&str; 13] = [
    "wasi:io/poll",
    "wasi:io/error",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Interfaces of our own package a policy may import.
pub const ALLOWED_OWN: [&str; 3] = [
    "meshup:policy/types",
    "meshup:policy/cluster",
    "meshup:policy/log",
];

/// Bytes of guest stderr kept (a panic message fits easily).
const STDERR_CAPACITY: usize = 8 * 1024;
/// Bytes kept of each string argument of a `cluster` call (Kubernetes names are at most 253).
const HOST_CALL_ARG_BYTES: usize = 1024;
/// Host calls per evaluation before further calls are refused.
pub const MAX_HOST_CALLS: usize = 1_000;

/// Per-call resource limits, and the bounds on the text a policy hands back.
/// Text bounds are bytes; longer text is cut with a visible `…(truncated, N bytes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget of one call (epoch deadline), milliseconds.
    pub time_ms: u64,
    /// Linear memory cap, MiB. Also caps the bytes the host copies out of one call.
    pub memory_mib: u64,
    /// Findings one evaluation may return.
    pub findings: usize,
    /// Bytes of `log` output kept per evaluation.
    pub log_bytes: usize,
    /// Total bytes of one evaluation's findings (after the per-field bounds); more fails the policy.
    pub findings_bytes: usize,
    /// A finding's code.
    pub code_bytes: usize,
    /// A finding's message, and its remediation.
    pub message_bytes: usize,
    /// A finding's subject.
    pub subject_bytes: usize,
    /// The metadata name (a longer name refuses the policy: a name is an identity).
    pub name_bytes: usize,
    /// The metadata version.
    pub version_bytes: usize,
    /// The metadata description.
    pub description_bytes: usize,
}

impl Limits {
    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_ms: 1000,
            memory_mib: 64,
            findings: 1000,
            log_bytes: 64 * 1024,
            findings_bytes: 256 * 1024,
            code_bytes: 128,
            message_bytes: 4 * 1024,
            subject_bytes: 512,
            name_bytes: 64,
            version_bytes: 64,
            description_bytes: 1024,
        }
    }
}

/// One `cluster` call, as audited and as replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCall {
    /// `get` or `list`.
    pub op: String,
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    pub allowed: bool,
    /// Why it was denied, or the reader's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The answer given to the guest (object, null, or list of objects) when allowed and successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl HostCall {
    /// Same operation on the same object(s).
    pub fn same_request(&self, other: &HostCall) -> bool {
        self.op == other.op
            && self.api_version == other.api_version
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
            && self.label_selector == other.label_selector
    }
}

/// One `log` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}

/// Memory limiter that remembers whether the cap was hit (to tell OOM from other traps).
pub struct Limiter {
    inner: StoreLimits,
    pub hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let r = self.inner.memory_growing(current, desired, maximum);
        if !matches!(r, Ok(true)) {
            self.hit = true;
        }
        r
    }
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// The data of one Store: one evaluation.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: Limiter,
    stderr: MemoryOutputPipe,
    policy: String,
    grants: Arc<Vec<Grant>>,
    /// Owned by the Store (shared with the caller), as wasmtime's embedding examples keep state.
    cluster: Option<Arc<dyn ClusterReader>>,
    log_cap: usize,
    log_used: usize,
    pub log_truncated: bool,
    pub calls: Vec<HostCall>,
    pub logs: Vec<LogLine>,
}

impl HostState {
    /// State for one evaluation.
    pub fn new(
        policy: &str,
        grants: Arc<Vec<Grant>>,
        cluster: Option<Arc<dyn ClusterReader>>,
        limits: &Limits,
    ) -> HostState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let limits_inner = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes())
            .instances(32)
            .tables(64)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                inner: limits_inner,
                hit: false,
            },
            stderr,
            policy: policy.to_string(),
            grants,
            cluster,
            log_cap: limits.log_bytes,
            log_used: 0,
            log_truncated: false,
            calls: vec![],
            logs: vec![],
        }
    }

    /// What the guest wrote to stderr (a panic message), trimmed.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Answer one `cluster` call of the guest, recording it (with the answer, for replay).
    fn read(&mut self, mut call: HostCall) -> Result<Value, String> {
        if self.calls.len() >= MAX_HOST_CALLS {
            let e = format!("host call limit of {MAX_HOST_CALLS} reached");
            // Recorded once: the audit log says why, without growing with each refused call.
            if self.calls.len() == MAX_HOST_CALLS {
                call.allowed = false;
                call.error = Some(e.clone());
                self.calls.push(call);
            }
            return Err(e);
        }
        let answer = self.answer(&call);
        self.record(call, answer)
    }

    /// The answer to a call, or whether it was allowed and why it failed.
    fn answer(&self, call: &HostCall) -> Result<Value, (bool, String)> {
        let req = Request {
            api_version: &call.api_version,
            kind: &call.kind,
            namespace: call.namespace.as_deref(),
            name: if call.op == "get" {
                call.name.as_deref()
            } else {
                None
            },
        };
        match grants::check(&self.grants, &self.policy, &req) {
            Err(denied) => Err((false, denied.to_string())),
            Ok(names) => match self.cluster.as_deref() {
                None => Err((
                    true,
                    "no cluster is available to this evaluation".to_string(),
                )),
                Some(c) => ask(c, call, names).map_err(|e| (true, e)),
            },
        }
    }

    fn record(
        &mut self,
        mut call: HostCall,
        answer: Result<Value, (bool, String)>,
    ) -> Result<Value, String> {
        match answer {
            Ok(v) => {
                call.allowed = true;
                // The answer is logged once per distinct request (replay finds the first one),
                // so a policy repeating a large read cannot blow up the audit log.
                if !self
                    .calls
                    .iter()
                    .any(|c| c.allowed && c.same_request(&call))
                {
                    call.result = Some(v.clone());
                }
                self.calls.push(call);
                Ok(v)
            }
            Err((allowed, e)) => {
                call.allowed = allowed;
                call.error = Some(e.clone());
                self.calls.push(call);
                Err(e)
            }
        }
    }
}

/// An allowed call put to the cluster. A list granted only for some `names` answers with
/// just those objects.
fn ask(cluster: &dyn ClusterReader, call: &HostCall, names: &[String]) -> Result<Value, String> {
    if call.op == "get" {
        return cluster
            .get(
                &call.api_version,
                &call.kind,
                call.namespace.as_deref(),
                call.name.as_deref().unwrap_or(""),
            )
            .map(|o| o.unwrap_or(Value::Null));
    }
    let items = cluster.list(
        &call.api_version,
        &call.kind,
        call.namespace.as_deref(),
        call.label_selector.as_deref(),
    )?;
    let granted = |o: &Value| {
        names.is_empty()
            || o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| names.iter().any(|x| x == n))
    };
    Ok(Value::Array(items.into_iter().filter(granted).collect()))
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::types::Host for HostState {}

impl wit::cluster::Host for HostState {
    fn get(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> Result<Option<String>, String> {
        let call = HostCall {
            op: "get".into(),
            api_version: arg(api_version),
            kind: arg(kind),
            namespace: namespace.map(arg),
            name: Some(arg(name)),
            label_selector: None,
            allowed: false,
            error: None,
            result: None,
        };
        self.read(call).map(|v| {
            if v.is_null() {
                None
            } else {
                Some(v.to_string())
            }
        })
    }

    fn list(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, String> {
        let call = HostCall {
            op: "list".into(),
            api_version: arg(api_version),
            kind: arg(kind),
            namespace: namespace.map(arg),
            name: None,
            label_selector: label_selector.map(arg),
            allowed: false,
            error: None,
            result: None,
        };
        self.read(call).map(|v| {
            v.as_array()
                .map(|a| a.iter().map(Value::to_string).collect())
                .unwrap_or_default()
        })
    }
}

/// A `cluster` call argument, cut at once so nothing unbounded is checked, kept or logged.
fn arg(s: String) -> String {
    text::truncate(s, HOST_CALL_ARG_BYTES)
}

impl HostState {
    /// Bytes of `log` output this evaluation may still keep.
    fn log_left(&self) -> usize {
        if self.log_truncated {
            0
        } else {
            self.log_cap.saturating_sub(self.log_used)
        }
    }

    /// Keep one `log` line of `len` bytes, of which `head` is the start (at least
    /// `log_left()` bytes of it, or all). The line that overflows the budget is kept up
    /// to it and marked; later lines are dropped.
    fn log_line(&mut self, level: wit::log::Level, head: &str, len: usize) {
        if self.log_truncated {
            return;
        }
        let left = self.log_left();
        let message = if len > left {
            self.log_truncated = true;
            format!("{}…(truncated, {len} bytes)", prefix(head, left))
        } else {
            head.to_string()
        };
        self.log_used += len.min(left);
        self.logs.push(LogLine {
            level: level.as_str().into(),
            message,
        });
    }
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `meshup:policy/log.log`, defined by hand rather than by `bindgen!` so the message is
/// read in place in guest memory (`WasmStr`) and copied only as far as the log budget.
fn add_log_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.instance(&format!("meshup:policy/log@{}", crate::base::wit::VERSION))?
        .func_wrap(
            "log",
            |mut store: StoreContextMut<'_, HostState>,
             (level, message): (wit::log::Level, WasmStr)| {
                let left = store.data().log_left();
                let (head, len) = {
                    let text = message.to_str(&store)?;
                    (prefix(&text, left).to_string(), text.len())
                };
                store.data_mut().log_line(level, &head, len);
                Ok(())
            },
        )
}

struct HasIo;
impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// A linker with the policy world's imports and exactly the 13 allowed WASI
/// interfaces — not the whole WASI world (no clocks, random, filesystem, sockets).
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::{cli, sync};
    let mut l: Linker<HostState> = Linker::new(engine);
    wit::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut l, |s| s)?;
    wit::cluster::add_to_linker::<HostState, HasSelf<HostState>>(&mut l, |s| s)?;
    add_log_to_linker(&mut l)?;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<HostState, HasIo>(&mut l, |t| {
        t.ctx().table
    })?;
    sync::io::poll::add_to_linker::<HostState, HasIo>(&mut l, |t| t.ctx().table)?;
    sync::io::streams::add_to_linker::<HostState, HasIo>(&mut l, |t| t.ctx().table)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    Ok(l)
}

/// Refuse a component built for another version of the `meshup:policy` package (its
/// imports or exports name `meshup:policy/...@X` with X not this host's), with one message
/// naming both versions (the caller names the policy: `policy X refused: built for ...`).
pub fn check_version(names: &[String]) -> Result<(), super::Refusal> {
    use crate::base::wit::{PACKAGE, VERSION};
    let other = names.iter().find_map(|n| {
        let rest = n.strip_prefix("meshup:policy/")?;
        let version = rest.split_once('@').map_or("", |(_, v)| v);
        (version != VERSION).then_some(version)
    });
    match other {
        None => Ok(()),
        Some(v) => {
            let built = if v.is_empty() {
                "meshup:policy without a version".to_string()
            } else {
                format!("meshup:policy@{v}")
            };
            let sdk = VERSION.rsplit_once('.').map_or(VERSION, |(minor, _)| minor);
            Err(super::Refusal(format!(
                "built for {built}; this meshup speaks {PACKAGE}: rebuild it against meshup-policy-sdk {sdk}"
            )))
        }
    }
}

/// Refuse a component whose imports go beyond the allowed set. The error names each offending import.
pub fn check_imports(imports: &[String]) -> Result<(), super::Refusal> {
    let bad: Vec<&String> = imports
        .iter()
        .filter(|name| {
            let iface = name.split('@').next().unwrap_or(name);
            !ALLOWED_WASI.contains(&iface) && !ALLOWED_OWN.contains(&iface)
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = bad.iter().map(|s| s.as_str()).collect();
    Err(super::Refusal(format!(
        "imports {} which the sandbox does not provide (policies may import only meshup:policy/cluster, meshup:policy/log and the wasi:io/wasi:cli interfaces of a std guest)",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Snapshot;
    use serde_json::json;
    use wit::cluster::Host as _;

    #[test]
    fn host_calls_are_granted_audited_deduplicated_and_capped() {
        let snap = Snapshot::from_objects(vec![
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"a"}}),
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"a"}}),
        ]);
        let grants = Arc::new(vec![Grant {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespaces: vec!["a".into()],
            names: vec![],
        }]);
        let limits = Limits {
            log_bytes: 10,
            ..Limits::default()
        };
        let mut st = HostState::new("p", grants, Some(Arc::new(snap)), &limits);
        let get = |st: &mut HostState, kind: &str| {
            st.get("v1".into(), kind.into(), Some("a".into()), "x".into())
        };
        assert!(get(&mut st, "ConfigMap").unwrap().is_some());
        assert!(
            get(&mut st, "Secret")
                .unwrap_err()
                .contains("not granted to policy p")
        );
        assert_eq!(
            st.list("v1".into(), "ConfigMap".into(), Some("a".into()), None)
                .unwrap()
                .len(),
            1
        );
        assert!(
            st.list("v1".into(), "ConfigMap".into(), None, None)
                .unwrap_err()
                .contains("outside the grants")
        );
        assert!(get(&mut st, "ConfigMap").unwrap().is_some());
        let allowed: Vec<(bool, bool)> = st
            .calls
            .iter()
            .map(|c| (c.allowed, c.result.is_some()))
            .collect();
        assert_eq!(
            allowed,
            [
                (true, true),
                (false, false),
                (true, true),
                (false, false),
                (true, false)
            ],
            "repeat answers are logged once"
        );

        for line in ["12345", "123456", "1"] {
            st.log_line(wit::log::Level::Info, line, line.len());
        }
        assert_eq!(st.logs.len(), 2);
        assert_eq!(st.logs[1].message, "12345…(truncated, 6 bytes)");
        assert!(st.log_truncated);
        assert_eq!(
            st.get("v1".into(), "x".repeat(1 << 20), None, "n".into())
                .ok(),
            None
        );
        assert!(
            st.calls
                .last()
                .unwrap()
                .kind
                .ends_with("…(truncated, 1048576 bytes)")
        );
        st.calls.pop();

        for _ in 0..MAX_HOST_CALLS + 50 {
            let _ = get(&mut st, "ConfigMap");
        }
        assert_eq!(st.calls.len(), MAX_HOST_CALLS + 1);
        assert!(
            get(&mut st, "ConfigMap")
                .unwrap_err()
                .contains("host call limit")
        );
    }

    #[test]
    fn import_allowlist() {
        let ok: Vec<String> = [
            "wasi:io/poll@0.2.6",
            "wasi:cli/stderr@0.2.3",
            "meshup:policy/cluster@0.3.0",
        ]
        .map(String::from)
        .to_vec();
        assert!(check_imports(&ok).is_ok());
        let bad = vec![
            "wasi:io/poll@0.2.6".to_string(),
            "wasi:sockets/tcp@0.2.6".to_string(),
            "wasi:clocks/wall-clock@0.2.6".into(),
        ];
        assert!(check_version(&ok).is_ok());
        let old = vec![
            "wasi:io/poll@0.2.6".into(),
            "meshup:policy/log@0.2.0".into(),
        ];
        assert_eq!(
            check_version(&old).unwrap_err().0,
            "built for meshup:policy@0.2.0; this meshup speaks meshup:policy@0.3.0: rebuild it against meshup-policy-sdk 0.3"
        );
        let e = check_imports(&bad).unwrap_err().0;
        assert!(
            e.contains("wasi:sockets/tcp@0.2.6")
                && e.contains("wasi:clocks/wall-clock@0.2.6")
                && !e.contains("io/poll"),
            "{e}"
        );
    }
}
