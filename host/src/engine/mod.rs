//! The upgrade's machinery, the same for every source and installer: plan and diff,
//! checks, apply with watches, capture and restore, prune, the data-plane report, and the
//! progress events actions send.

pub mod apply;
pub mod checks;
pub mod cluster_specific;
pub mod dataplane;
pub mod describe;
pub mod failure;
pub mod plan;
pub mod progress;
pub mod prune;
pub mod restore;
pub mod reverts;
pub mod verify;
