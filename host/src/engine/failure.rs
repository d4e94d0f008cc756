//! How an apply, a wait or a verification stops, so the caller can decide to roll back.

use crate::cluster::wait;

/// Where an apply stopped, so the caller can decide to roll back.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("applying {component}: {message}")]
    Apply { component: String, message: String },
    #[error("waiting for {component}: {source}")]
    NotReady {
        component: String,
        source: wait::WaitError,
    },
    #[error("verifying versions: {0}")]
    Verify(String),
    #[error("pruning: {0}")]
    Prune(String),
    #[error("interrupted after component {0}")]
    Interrupted(String),
}
