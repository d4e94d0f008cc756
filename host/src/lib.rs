//! meshup: upgrades and downgrades a service-mesh control plane in place, safely.
//!
//! One module per concept; `cli` only turns flags into calls of the others.

pub mod access;
pub mod action;
pub mod apply;
pub mod bundle;
pub mod checks;
pub mod cli;
pub mod cluster;
pub mod dataplane;
pub mod discovery;
pub mod exit;
pub mod history;
pub mod iop;
pub mod lock;
pub mod permissions;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod prune;
pub mod render;
pub mod restore;
pub mod retry;
pub mod shipped;
pub mod sim_webhooks;
pub mod state;
pub mod ui;
pub mod values;
pub mod version;
pub mod wait;
pub mod yaml;
