//! The API server's audit log (every request at Metadata level, one JSON event a line).

use std::path::PathBuf;

use serde_json::Value;

pub struct AuditLog {
    pub path: PathBuf,
}

/// Verbs that change the cluster when not dry-run.
const MUTATING: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// API groups whose `create` only asks a question (SelfSubjectAccessReview, TokenReview, ...).
const QUESTION_GROUPS: [&str; 2] = ["authorization.k8s.io", "authentication.k8s.io"];

impl AuditLog {
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog { path }
    }

    /// The current end of the log; events after it are this mark's.
    pub fn mark(&self) -> usize {
        std::fs::metadata(&self.path)
            .map(|m| m.len() as usize)
            .unwrap_or(0)
    }

    /// Completed requests since `mark`.
    pub fn since(&self, mark: usize) -> Vec<Value> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        String::from_utf8_lossy(&text[mark.min(text.len())..])
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .collect()
    }

    /// Requests by `user` since `mark` that changed (or tried to change) the cluster:
    /// mutating verbs without `dryRun`, other than access questions.
    pub fn mutations_by(&self, user: &str, mark: usize) -> Vec<Value> {
        self.since(mark)
            .into_iter()
            .filter(|e| e["user"]["username"] == user)
            .filter(|e| MUTATING.contains(&e["verb"].as_str().unwrap_or("")))
            .filter(|e| !e["requestURI"].as_str().unwrap_or("").contains("dryRun="))
            .filter(|e| {
                !QUESTION_GROUPS.contains(&e["objectRef"]["apiGroup"].as_str().unwrap_or(""))
            })
            .collect()
    }

    /// Every request by `user` since `mark`.
    pub fn requests_by(&self, user: &str, mark: usize) -> Vec<Value> {
        self.since(mark)
            .into_iter()
            .filter(|e| e["user"]["username"] == user)
            .collect()
    }
}

/// A one-line summary of an audit event, for assertion messages.
pub fn describe(e: &Value) -> String {
    format!(
        "{} {} -> {}",
        e["verb"].as_str().unwrap_or("?"),
        e["requestURI"].as_str().unwrap_or("?"),
        e["responseStatus"]["code"]
    )
}
