//! Exit codes, as documented in DESIGN.md and README.md.

use std::fmt;

/// The documented process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Done.
    Ok = 0,
    /// Unexpected error (API, I/O).
    Unexpected = 1,
    /// Bad input: usage, bundle, values, policy file.
    BadInput = 2,
    /// Blocked by a check.
    Blocked = 3,
    /// Aborted at the prompt.
    Aborted = 4,
    /// Failed and rolled back to the previous version.
    RolledBack = 5,
    /// Failed and not restored.
    NotRestored = 6,
}

/// An error that knows which exit code it maps to. Anything else is `Unexpected`.
#[derive(Debug)]
pub struct Exit {
    pub code: Code,
    pub message: String,
}

impl Exit {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Exit::new(Code::BadInput, message)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error chain, decided here and nowhere else: the first error in the
/// chain that says what it means for the user (an `Exit`, or a module's typed error that is
/// the user's input), else `Unexpected`.
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(code_of_one)
        .unwrap_or(Code::Unexpected)
}

fn code_of_one(e: &(dyn std::error::Error + 'static)) -> Option<Code> {
    use crate::cluster;
    if let Some(e) = e.downcast_ref::<Exit>() {
        return Some(e.code);
    }
    // Input files and references the user gave: the bundle, IstioOperator files and
    // --set, the policy configuration and policy files.
    if e.is::<crate::bundle::Error>()
        || e.is::<crate::yaml::Error>()
        || e.is::<crate::iop::Error>()
        || e.is::<crate::policy::Error>()
        || e.is::<meshup_sim::BackendConfigError>()
    {
        return Some(Code::BadInput);
    }
    if let Some(e) = e.downcast_ref::<cluster::Error>() {
        return Some(match e {
            cluster::Error::Kubeconfig(_) => Code::BadInput,
            _ => Code::Unexpected,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn code(e: impl Into<anyhow::Error>) -> Code {
        // Context on top must not hide what the error means.
        code_of(&Err::<(), _>(e.into()).context("while doing X").unwrap_err())
    }

    #[test]
    fn typed_errors_map_to_their_documented_codes() {
        use crate::{bundle, cluster, iop, policy};
        assert_eq!(code(bundle::Error::NotABundle("x".into())), Code::BadInput);
        assert_eq!(
            code(iop::Error::Set {
                expr: "a=b".into(),
                message: "unknown".into()
            }),
            Code::BadInput
        );
        assert_eq!(
            code(policy::Error::Reference("builtin:nope".into())),
            Code::BadInput
        );
        assert_eq!(
            code(cluster::Error::Kubeconfig("bad".into())),
            Code::BadInput
        );
        assert_eq!(
            code(cluster::Error::Unreachable {
                at: "https://127.0.0.1:1".into(),
                cause: "refused".into()
            }),
            Code::Unexpected
        );
        assert_eq!(code(Exit::new(Code::Blocked, "no")), Code::Blocked);
        assert_eq!(code(anyhow::anyhow!("anything else")), Code::Unexpected);
    }
}
