//! YAML input files (bundles, IstioOperator files) parsed with their location in errors.

use std::path::{Path, PathBuf};

/// A YAML file that does not parse into what was expected, at `file:line:column`.
#[derive(Debug, thiserror::Error)]
#[error("{}{at}: {message}", path.display())]
pub struct Error {
    pub path: PathBuf,
    /// `:line:column`, or empty when serde_yaml gave no location.
    pub at: String,
    pub message: String,
}

/// Parse YAML, turning serde's location into `file:line:column`.
pub fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        // serde_yaml repeats the location at the end of its message; drop it.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        Error {
            path: path.to_path_buf(),
            at,
            message,
        }
    })
}
