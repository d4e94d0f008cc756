//! meshup: upgrades and downgrades a service-mesh control plane in place, safely.
//!
//! One module per concept; `cli` only turns flags into calls of the others.

pub mod cli;
pub mod exit;
pub mod policy;
