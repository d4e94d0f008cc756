//! Cluster access: the `Kube` trait the actions use, its client against an API server,
//! watch-based waiting, retries, permission reviews and the upgrade lock.

pub mod client;
pub mod kube;
pub mod lock;
pub mod permissions;
pub mod retry;
pub mod wait;
