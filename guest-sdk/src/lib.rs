//! The meshup policy SDK: everything a policy author needs.
//!
//! A policy is one struct implementing [`Policy`] (two functions) and one
//! [`export_policy!`] line. Policy logic receives the cluster as a
//! `&dyn Cluster`, so it is unit-testable natively with [`testing::FakeCluster`];
//! the WebAssembly imports are only touched by [`HostCluster`] inside a component.
//!
//! See `guest-sdk/README.md` for the author's guide.

pub mod cluster;
pub mod finding;
pub mod obj;
pub mod testing;
pub mod values;
pub mod version;

/// Raw bindings generated from `wit/policy.wit` by wit-bindgen.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::meshup_policy_sdk::bindings",
    });
}

pub use bindings::meshup::policy::log::Level;
pub use bindings::meshup::policy::types::{
    Component, ComponentRole, Context, Direction, Finding, Metadata, Outcome, Phase, Read,
    Severity, VersionRange,
};
pub use cluster::{Cluster, HostCluster};
pub use finding::{FindingExt, error, info, warning};
pub use serde_json::{self, Value, json};
pub use version::Version;

/// A policy: what it is ([`Policy::metadata`]) and what it finds ([`Policy::evaluate`]).
pub trait Policy {
    /// Name, version, description, phases, declared reads and default config.
    fn metadata() -> Metadata;
    /// Check one phase of one run. `cluster` answers only the granted reads.
    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding>;
}

/// Export a [`Policy`] implementation as the component's `metadata`/`evaluate`.
///
/// ```ignore
/// struct Skew;
/// impl meshup_policy_sdk::Policy for Skew { /* ... */ }
/// meshup_policy_sdk::export_policy!(Skew);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __MeshupPolicyExport;
            impl $crate::bindings::Guest for __MeshupPolicyExport {
                fn metadata() -> $crate::Metadata {
                    <$ty as $crate::Policy>::metadata()
                }
                fn evaluate(context: $crate::Context) -> ::std::vec::Vec<$crate::Finding> {
                    <$ty as $crate::Policy>::evaluate(&context, &$crate::HostCluster)
                }
            }
    $crate::bindings::__export_world!(__MeshupPolicyExport with_types_in $crate::bindings);
        };
    };
}

/// Write a line to the audit log (on the host: stderr, so native tests never call an import).
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::meshup::policy::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Parse a JSON string from the context (`values-old`, `config`, ...); invalid or empty → `{}`.
pub fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| json!({}))
}

/// Convenience accessors on the context.
pub trait ContextExt {
    /// The policy's configuration as JSON.
    fn config(&self) -> Value;
    /// A string field of the configuration, or `default`.
    fn config_str(&self, key: &str, default: &str) -> String;
    /// An integer field of the configuration, or `default`.
    fn config_i64(&self, key: &str, default: i64) -> i64;
}

impl ContextExt for Context {
    fn config(&self) -> Value {
        parse_json(&self.config)
    }
    fn config_str(&self, key: &str, default: &str) -> String {
        self.config()
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    }
    fn config_i64(&self, key: &str, default: i64) -> i64 {
        self.config()
            .get(key)
            .and_then(Value::as_i64)
            .unwrap_or(default)
    }
}

/// A declared read of `kind` in all namespaces, all names.
pub fn read(api_version: &str, kind: &str) -> Read {
    Read {
        api_version: api_version.into(),
        kind: kind.into(),
        namespaces: vec![],
        names: vec![],
    }
}

pub mod time;
