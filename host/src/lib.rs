//! meshup: upgrades and downgrades a service-mesh control plane in place, safely.
//!
//! One module per concept; `cli` only turns flags into calls of the others.

pub mod apply;
pub mod bundle;
pub mod cli;
pub mod cluster;
pub mod exit;
pub mod history;
pub mod plan;
pub mod render;
pub mod state;
pub mod ui;
pub mod values;
pub mod version;
pub mod wait;
pub mod dataplane;
pub mod action;
pub mod checks;
pub mod lock;
pub mod permissions;
