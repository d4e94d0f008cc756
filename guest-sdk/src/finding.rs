//! Finding builders: `error("skew.too-far", "...").with_remediation("...")`.

use crate::{Finding, Severity};

fn new(severity: Severity, code: &str, message: impl Into<String>) -> Finding {
    Finding {
        code: code.into(),
        severity,
        message: message.into(),
        remediation: None,
        subject: None,
    }
}

/// A blocking finding.
pub fn error(code: &str, message: impl Into<String>) -> Finding {
    new(Severity::Error, code, message)
}

/// A finding shown to the user that does not block.
pub fn warning(code: &str, message: impl Into<String>) -> Finding {
    new(Severity::Warning, code, message)
}

/// A finding for the record.
pub fn info(code: &str, message: impl Into<String>) -> Finding {
    new(Severity::Info, code, message)
}

/// Builder methods on [`Finding`].
pub trait FindingExt {
    /// What the user can do about it.
    fn with_remediation(self, remediation: impl Into<String>) -> Self;
    /// The object concerned, e.g. `Deployment istio-system/istiod`.
    fn with_subject(self, subject: impl Into<String>) -> Self;
}

impl FindingExt for Finding {
    fn with_remediation(mut self, remediation: impl Into<String>) -> Self {
        self.remediation = Some(remediation.into());
        self
    }
    fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}
