//! meshup: upgrades and downgrades a service-mesh control plane in place, safely.
//!
//! The crate is arranged in layers, each a folder that uses only the layers listed before it
//! (`host/tests/layers.rs` keeps it so, and keeps the crate free of import cycles):
//!
//! - `base`: exit codes, the WIT types, versions, value trees, YAML input, object identity,
//!   untrusted-text escaping;
//! - `policy`: the wasmtime runtime for policies, their sandbox, grants, audit and replay;
//! - `cluster`: the `Kube` trait and its client, watches and rollout status, retries,
//!   permissions, the upgrade lock;
//! - `release`: where a target release comes from (`Source`): the built-in bundles, their
//!   input language (IstioOperator) and discovery facts;
//! - `installed`: what runs and who installed it (`Installer`): meshup's history,
//!   istioctl's records, the installed state;
//! - `engine`: plan and diff, checks, apply, restore, prune, data plane, progress events;
//! - `action`: one file per user action, each returning a report;
//! - `cli`: flags, printing of reports, exit codes, the demo, `meshup policy`.

pub mod action;
pub mod base;
pub mod cli;
pub mod cluster;
pub mod engine;
pub mod installed;
pub mod policy;
pub mod release;
