//! What can go wrong with policies before they run, typed at the module's edge. Anything a
//! policy does while it runs is a finding, not an error (see `failed_finding`).

use std::path::PathBuf;

/// Why a policy component is refused: not a component, an import a policy may not have,
/// not the policy world, a stale pin, metadata out of bounds. A refused policy fails every
/// phase it is in, and is an error for `meshup policy inspect|test`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal(reason.into())
    }
}

/// Policy input that cannot be used: always the user's (exit 2), naming where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy configuration file (`--policy-config`).
    #[error("policy configuration {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    /// A policy reference (`builtin:NAME` or a path) that names nothing.
    #[error("{0}")]
    Reference(String),
    /// A policy given on the command line that cannot be run.
    #[error("policy {policy} refused: {reason}")]
    Refused { policy: String, reason: Refusal },
    /// An input file of `meshup policy test` (context, config, objects).
    #[error("{what} {}: {message}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
}
