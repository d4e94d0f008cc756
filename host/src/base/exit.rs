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
