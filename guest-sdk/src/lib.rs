//! The meshup policy SDK: everything a policy author needs.
//!
//! A policy is one struct implementing [`Policy`] (two functions) and one
//! [`export_policy!`] line. Policy logic receives the cluster as a
//! `&dyn Cluster`, so it is unit-testable natively with [`testing::FakeCluster`];
//! the WebAssembly imports are only touched by [`HostCluster`] inside a component.
//!
//! The SDK speaks `meshup:policy@0.3.0` (its own minor is the WIT package's): the context
//! says which `source` rendered the target (a bundle's IstioOperator values or the charts'
//! Helm values), and each [`Component`] carries its release, chart, namespace and values.
//!
//! See `guest-sdk/README.md` for the author's guide.

pub mod cluster;
pub mod finding;
pub mod obj;
pub mod testing;
pub mod values;
pub mod version;

/// Raw bindings generated from `wit/policy.wit` (`meshup:policy@0.3.0`) by wit-bindgen.
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
    ReleaseSource, Severity, VersionRange,
};
pub use cluster::{Cluster, HostCluster};
pub use finding::{FindingExt, error, info, warning};
pub use meshup_vocab::selector::Selector;
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

/// Parse a JSON string of the context (`values-old`, `config`, ...); empty → `{}`.
pub fn try_parse_json(s: &str) -> Result<Value, serde_json::Error> {
    if s.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(s)
}

/// Like [`try_parse_json`], for the JSON the host always passes. Invalid JSON (only a
/// hand-built test context can have it) panics with the parse error, so the author sees
/// it in the test (or as the policy's failure) instead of the policy running on `{}`.
pub fn parse_json(s: &str) -> Value {
    try_parse_json(s).unwrap_or_else(|e| panic!("context field is not valid JSON: {e}: {s:.200}"))
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
        try_parse_json(&self.config).unwrap_or_else(|e| {
            panic!(
                "the policy config is not valid JSON: {e}: {:.200}",
                self.config
            )
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with_config(config: &str) -> Context {
        let mut ctx = testing::context();
        ctx.config = config.into();
        ctx
    }

    #[test]
    fn empty_json_is_an_empty_object_and_invalid_json_an_error() {
        assert_eq!(parse_json(""), json!({}));
        assert_eq!(parse_json(r#"{"a":1}"#), json!({"a": 1}));
        assert!(try_parse_json("{not json").is_err());
    }

    #[test]
    fn valid_config_is_read() {
        let ctx = ctx_with_config(r#"{"max_minor":2}"#);
        assert_eq!(ctx.config_i64("max_minor", 1), 2);
        assert_eq!(ctx.config_str("missing", "d"), "d");
    }

    #[test]
    #[should_panic(expected = "the policy config is not valid JSON")]
    fn invalid_config_is_an_error_not_an_empty_object() {
        ctx_with_config("{max_minor: 2").config();
    }
}
