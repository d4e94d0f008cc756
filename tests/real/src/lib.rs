//! Harness of the real tier: brings up `tests/real/cluster` once, runs every client (meshup,
//! kubectl) inside the cluster's network namespace, reads the API server's audit log, and
//! tears everything down at the end.
//!
//! Without Go (or without the rights to create a network namespace) the tier is SKIPPED with
//! the reason printed; under `CI=true` that is a failure instead, never a silent pass.

pub mod audit;
pub mod charts;
pub mod cluster;
pub mod compare;
pub mod end_state;
pub mod fs;
pub mod helm;
pub mod helm_istio;
pub mod istioctl;
pub mod run;
pub mod runner;
pub mod webhook;

pub use cluster::Cluster;
pub use run::Run;
