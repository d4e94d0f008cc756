//! The vocabulary meshup's parts share: Kubernetes label selectors, Istio (and
//! Kubernetes) version tags, RFC 3339 time, and how one value tree covers another.
//!
//! It knows nothing of meshup's internals, so the host, the policy SDK and its
//! `FakeCluster`, the policies (compiled to `wasm32-wasip2`) and the simulator all use
//! it, and answer the same question the same way. Before it existed, label selectors
//! were parsed three times and disagreed (the SDK's fake lacked `in`/`notin`), and
//! version tags four times.

pub mod selector;
pub mod time;
pub mod tree;
pub mod version;

pub use selector::{Requirement, Selector, SelectorError};
pub use version::Version;
