//! Helm's own engine: the `helm` binary renders a chart (`helm template`, offline), as
//! `helm upgrade` would render it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Helm 3.14 brought `--reset-then-reuse-values`, and with it the values semantics meshup
/// keeps; Istio's charts need nothing newer.
const MIN: (u64, u64) = (3, 14);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no `helm` binary {where_}: install Helm 3.14+ or 4 (https://helm.sh/docs/intro/install/) or pass --helm PATH"
    )]
    Missing { where_: String },
    #[error(
        "{} is Helm {found}; meshup needs Helm 3.14+ or 4: install a newer one or pass --helm PATH",
        path.display()
    )]
    TooOld { path: PathBuf, found: String },
    #[error("`helm template` of {release} ({chart}) failed: {stderr}")]
    Render {
        release: String,
        chart: String,
        stderr: String,
    },
}

/// A `helm` binary of a version meshup can use.
#[derive(Debug, Clone)]
pub struct Helm {
    pub path: PathBuf,
    /// `v4.3.2`, `v3.21.4` (as `helm version` says it).
    pub version: String,
}

impl Helm {
    /// `path`, else `helm` on PATH; its version checked.
    pub fn find(path: Option<&Path>) -> Result<Helm, Error> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => which("helm").ok_or_else(|| Error::Missing {
                where_: "on PATH".into(),
            })?,
        };
        let out = Command::new(&path)
            .args(["version", "--template", "{{.Version}}"])
            .output()
            .map_err(|e| Error::Missing {
                where_: format!("at {} ({e})", path.display()),
            })?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let parsed = meshup_vocab::Version::parse(&version).map(|v| (v.major, v.minor));
        if !out.status.success() || parsed.is_none_or(|v| v < MIN) {
            return Err(Error::TooOld {
                path,
                found: if version.is_empty() {
                    "of an unknown version".into()
                } else {
                    version
                },
            });
        }
        Ok(Helm { path, version })
    }

    /// `helm template RELEASE CHART -n NAMESPACE` with the user's `values`, offline, for
    /// the cluster's Kubernetes version, as an upgrade or an install renders.
    pub fn template(
        &self,
        release: &str,
        chart: &Path,
        namespace: &str,
        values: &Value,
        kubernetes: Option<&str>,
        upgrade: bool,
    ) -> Result<String, Error> {
        let failed = |stderr: String| Error::Render {
            release: release.to_string(),
            chart: chart.display().to_string(),
            stderr,
        };
        // The values go in on stdin (`--values -`): nothing to write or clean up.
        let mut cmd = Command::new(&self.path);
        cmd.arg("template")
            .arg(release)
            .arg(chart)
            .args(["--namespace", namespace, "--values", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(v) = kubernetes {
            cmd.args(["--kube-version", v]);
        }
        if upgrade {
            cmd.arg("--is-upgrade");
        }
        let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(values.to_string().as_bytes())
                .map_err(|e| failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(failed(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
