//! Where the target release comes from: a `Source` gives the engine a release's facts, its
//! values and its rendered objects. The built-in bundles are the first source.

pub mod bundle;
pub mod charts;
pub mod components;
pub mod discovery;
pub mod iop;
pub mod istioctl;
pub mod shipped;
pub mod source;

pub use source::Source;

/// The built-in bundle at `dir` as the target release, checked whole (every file and every
/// profile renders) before anything touches a cluster.
pub fn load_bundle(dir: &std::path::Path) -> anyhow::Result<Box<dyn Source>> {
    let bundle = bundle::Bundle::load(dir)?;
    bundle::render::lint(&bundle)?;
    Ok(Box::new(bundle))
}

/// A release's own Helm charts as the target release, rendered by `helm` (`--helm`, else
/// the one on PATH).
pub fn load_charts(
    dir: &std::path::Path,
    helm: Option<&std::path::Path>,
    gateways: &[charts::Gateway],
) -> anyhow::Result<Box<dyn Source>> {
    Ok(Box::new(charts::Charts::load(dir, helm, gateways)?))
}

/// Where the target release comes from, as the user named it (one flag each).
#[derive(Debug, Clone)]
pub enum Target {
    /// `--bundle DIR`: a built-in bundle.
    Bundle(std::path::PathBuf),
    /// `--charts PATH [--helm PATH] [--gateway [NS/]RELEASE]...`: the release's own Helm
    /// charts, with a gateway chart release per gateway.
    Charts {
        dir: std::path::PathBuf,
        helm: Option<std::path::PathBuf>,
        gateways: Vec<charts::Gateway>,
    },
    /// `--istioctl PATH [--manifests DIR]`: the release's own istioctl renders, offline; the
    /// run's inputs say which release it is (istiod's image tag in what they render).
    Istioctl {
        path: std::path::PathBuf,
        manifests: Option<std::path::PathBuf>,
        inputs: source::Inputs,
    },
}

impl Target {
    /// The source, validated whole before anything touches a cluster.
    pub fn load(&self) -> anyhow::Result<Box<dyn Source>> {
        match self {
            Target::Bundle(dir) => load_bundle(dir),
            Target::Charts {
                dir,
                helm,
                gateways,
            } => load_charts(dir, helm.as_deref(), gateways),
            Target::Istioctl {
                path,
                manifests,
                inputs,
            } => Ok(Box::new(istioctl::Istioctl::load(
                path,
                manifests.as_deref(),
                inputs,
            )?)),
        }
    }
}

impl std::fmt::Display for Target {
    /// As the user typed it: `--bundle bundles/istio-1.8.6`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Bundle(dir) => write!(f, "--bundle {}", dir.display()),
            Target::Charts { dir, .. } => write!(f, "--charts {}", dir.display()),
            Target::Istioctl { path, .. } => write!(f, "--istioctl {}", path.display()),
        }
    }
}
