//! The release's own istioctl: `istioctl manifest generate`, run without cluster access (no
//! kubeconfig is passed and `--cluster-specific` is left off, so it builds no Kubernetes
//! client at all), as `istioctl install` renders before it applies.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// An istioctl that cannot render (the user's input: exit 2, the cluster untouched).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--istioctl {}: cannot run it ({cause}); pass the path of the release's istioctl binary (istio-X/bin/istioctl in a release archive)",
        path.display()
    )]
    Missing { path: PathBuf, cause: String },
    #[error(
        "--istioctl {}: `istioctl version --remote=false` failed or printed no version ({output}); is it an istioctl binary?",
        path.display()
    )]
    NotIstioctl { path: PathBuf, output: String },
    /// istioctl refused the inputs (an unknown field, a wrong type, a missing profile) or
    /// failed: its own message, which names the value.
    #[error("`istioctl manifest generate` ({}) refused this run's inputs: {stderr}", path.display())]
    Render { path: PathBuf, stderr: String },
}

/// An istioctl binary and the version it was built as (`1.31-dev`, `1.30.3`): what
/// `istioctl install` stamps as `operator.istio.io/version`.
#[derive(Debug, Clone)]
pub struct Binary {
    pub path: PathBuf,
    pub version: String,
}

impl Binary {
    /// The istioctl at `path`, asked for its own version (no cluster).
    pub fn find(path: &Path) -> Result<Binary, Error> {
        let out = Command::new(path)
            .args(["version", "--remote=false", "-o", "json"])
            .env_remove("KUBECONFIG")
            .output()
            .map_err(|e| Error::Missing {
                path: path.to_path_buf(),
                cause: e.to_string(),
            })?;
        let not_istioctl = || Error::NotIstioctl {
            path: path.to_path_buf(),
            output: summary(&out.stdout, &out.stderr),
        };
        if !out.status.success() {
            return Err(not_istioctl());
        }
        let doc: Value = serde_json::from_slice(&out.stdout).map_err(|_| not_istioctl())?;
        let version = doc["clientVersion"]["version"]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(not_istioctl)?;
        Ok(Binary {
            path: path.to_path_buf(),
            version: version.to_string(),
        })
    }

    /// `istioctl manifest generate -f - [--manifests DIR]`: the IstioOperator `iop` (YAML,
    /// on stdin) rendered offline; the manifest as istioctl prints it.
    pub fn generate(&self, iop: &str, manifests: Option<&Path>) -> Result<String, Error> {
        let failed = |cause: String| Error::Missing {
            path: self.path.clone(),
            cause,
        };
        let mut cmd = Command::new(&self.path);
        cmd.args(["manifest", "generate", "-f", "-"]);
        if let Some(dir) = manifests {
            cmd.arg("--manifests").arg(dir);
        }
        // Never a cluster: without --cluster-specific istioctl builds no client, and without
        // a KUBECONFIG it could not find one if it tried.
        cmd.env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(iop.as_bytes())
                .map_err(|e| failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(Error::Render {
                path: self.path.clone(),
                stderr: summary(&[], &out.stderr),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// What a process printed, trimmed, for an error message.
fn summary(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(stderr).trim(),
        String::from_utf8_lossy(stdout).trim()
    );
    let text = text.trim();
    if text.is_empty() {
        "no output".into()
    } else {
        text.to_string()
    }
}
