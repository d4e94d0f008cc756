//! Command-line surface. Each subcommand fills an action's options struct and runs it;
//! nothing here decides anything about upgrades.

mod commands;
pub mod conventions;
pub mod demo;
pub mod exit;
pub mod policy;
pub mod present;
pub mod sim_webhooks;
pub mod ui;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::action;
use crate::base::exit::Code;
use crate::engine::plan::DiffMode;
use crate::policy::RuntimeOptions;
use crate::release::source::Inputs;
use ui::Format;

#[derive(Parser, Debug)]
#[command(
    name = "meshup",
    version,
    about = "Safe in-place upgrades and downgrades of a service-mesh control plane",
    after_help = "Exit codes: 0 done, 1 unexpected error, 2 bad input, 3 blocked by a check (or another run's lock), \
                  4 aborted at the prompt, 5 failed and rolled back, 6 failed and not restored."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "MESHUP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Output format: text for people, json for machines (one document on stdout).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Policy configuration file (which policies run, grants, pins, limits).
    #[arg(long, global = true)]
    pub policy_config: Option<PathBuf>,
    /// Append one JSON line per policy evaluation to this file.
    #[arg(long, global = true)]
    pub audit_log: Option<PathBuf>,
}

/// Which cluster (kubectl's `--context`; the kubeconfig is a global flag).
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct BundleArgs {
    /// Release bundle directory, e.g. bundles/istio-1.8.6.
    #[arg(long, required_unless_present_any = ["charts", "istioctl"])]
    pub bundle: Option<PathBuf>,
    /// The release's own Helm charts: a release directory (istio-1.30.3), its manifests/charts,
    /// or a folder of chart directories or .tgz files as `helm pull` leaves them.
    #[arg(long, conflicts_with_all = ["bundle", "istioctl"])]
    pub charts: Option<PathBuf>,
    /// The release's own istioctl: it renders the IstioOperator (`istioctl manifest generate`,
    /// offline; never given the cluster), meshup does the rest. -f and --set as for --bundle.
    #[arg(long, conflicts_with = "bundle")]
    pub istioctl: Option<PathBuf>,
    /// With --istioctl: the release manifests (charts and profiles) istioctl renders instead of
    /// its own, passed through as its --manifests (e.g. istio-1.30.3/manifests).
    #[arg(long, requires = "istioctl")]
    pub manifests: Option<PathBuf>,
    /// The helm binary that renders --charts (Helm 3.14+ or 4; default: helm on PATH).
    #[arg(long, requires = "charts")]
    pub helm: Option<PathBuf>,
    /// With --charts: a gateway, one release of the `gateway` chart: RELEASE (in a namespace of
    /// the same name) or NAMESPACE/RELEASE. Repeatable; default: istio-ingress (in istio-ingress).
    #[arg(long = "gateway", requires = "charts")]
    pub gateways: Vec<crate::release::charts::Gateway>,
    /// With --bundle or --istioctl: IstioOperator file(s) (install.istio.io/v1alpha1), merged in order over the profile, as istioctl
    /// takes them. With --charts: RELEASE=FILE, a Helm values file for one release (istio-base, istiod, or a gateway: istio-ingress unless --gateway names others).
    #[arg(short = 'f', long = "values")]
    pub values: Vec<PathBuf>,
    /// With --bundle or --istioctl: an istioctl path=value, e.g. components.pilot.k8s.replicaCount=2, values.pilot.traceSampling=5.0,
    /// components.ingressGateways[name:istio-ingressgateway].enabled=false. With --charts: RELEASE:path=value, a Helm
    /// value of one release, e.g. istiod:pilot.autoscaleMin=2. Repeatable; applied after -f.
    #[arg(long = "set")]
    pub set: Vec<String>,
    /// Profile (default: the IstioOperator's `profile`, else the one used last time, else `default`).
    #[arg(long)]
    pub profile: Option<String>,
    /// With --charts, over a Helm install: drop the values the user set at the last
    /// deployed revision of each release (kept by default, as `helm upgrade
    /// --reset-then-reuse-values` keeps them); the plan names each value that reverts.
    #[arg(long, requires = "charts")]
    pub reset_values: bool,
}

impl BundleArgs {
    /// The target release the flags name (clap has checked that exactly one is given).
    fn target(&self) -> crate::release::Target {
        match (&self.bundle, &self.charts, &self.istioctl) {
            (Some(dir), _, _) => crate::release::Target::Bundle(dir.clone()),
            (None, None, Some(path)) => crate::release::Target::Istioctl {
                path: path.clone(),
                manifests: self.manifests.clone(),
                inputs: self.inputs(),
            },
            (None, dir, _) => crate::release::Target::Charts {
                dir: dir.clone().unwrap_or_default(),
                helm: self.helm.clone(),
                gateways: self.gateways.clone(),
            },
        }
    }

    fn inputs(&self) -> Inputs {
        Inputs {
            profile: self.profile.clone(),
            value_files: self.values.clone(),
            set: self.set.clone(),
            reset_values: self.reset_values,
        }
    }
}

/// The installed release's istioctl, for what this run reverts of an istioctl install.
#[derive(Args, Debug, Clone, Default)]
pub struct FromArgs {
    /// With --istioctl: the istioctl that installed what runs (istio-X/bin/istioctl of the
    /// installed release). meshup re-renders the installed release with this run's inputs
    /// through it and names each value set at install (or by hand) that this run reverts,
    /// with the --set that keeps it. For an istioctl install, which keeps no record of its
    /// inputs.
    #[arg(long, requires = "istioctl")]
    pub from_istioctl: Option<PathBuf>,
    /// With --from-istioctl: the manifests it rendered the install with (its --manifests).
    #[arg(long, requires = "from_istioctl")]
    pub from_manifests: Option<PathBuf>,
}

impl FromArgs {
    fn installed(&self) -> Option<crate::engine::reverts::InstalledIstioctl> {
        self.from_istioctl
            .clone()
            .map(|istioctl| crate::engine::reverts::InstalledIstioctl {
                istioctl,
                manifests: self.from_manifests.clone(),
            })
    }
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Proceed despite every blocking check (recorded in history and the audit log).
    #[arg(long)]
    pub force: bool,
    /// Skip one finding code, e.g. --ignore skew.too-far (repeatable; recorded).
    #[arg(long = "ignore", value_name = "CODE")]
    pub ignore: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ApplyArgs {
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Do everything up to applying, with server-side dry-run; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long each component may take to become ready (e.g. 300s, 5m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
    pub readiness_timeout: Duration,
    /// Object diffs in the plan: `summary` (each change in a line, no diff), `changes`
    /// (also the diff of each change beyond version labels; `--diff` alone) or `full`.
    #[arg(long, value_enum, default_value = "summary", num_args = 0..=1, default_missing_value = "changes")]
    pub diff: DiffMode,
    /// Revisions kept in history.
    #[arg(long, default_value_t = 10)]
    pub history_max: usize,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// First install of a bundle.
    Install {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        checks: CheckArgs,
        #[command(flatten)]
        apply: ApplyArgs,
    },
    /// Run every check for an upgrade to the bundle; change nothing.
    Precheck {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        checks: CheckArgs,
        #[command(flatten)]
        from: FromArgs,
        /// Object diffs in the plan: `summary` (each change in a line, no diff), `changes`
        /// (also the diff of each change beyond version labels; `--diff` alone) or `full`.
        #[arg(long, value_enum, default_value = "summary", num_args = 0..=1, default_missing_value = "changes")]
        diff: DiffMode,
    },
    /// Upgrade (or downgrade) the control plane in place to the bundle's version.
    Upgrade {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        bundle: BundleArgs,
        #[command(flatten)]
        checks: CheckArgs,
        #[command(flatten)]
        apply: ApplyArgs,
        #[command(flatten)]
        from: FromArgs,
        /// Leave a failed upgrade as it is instead of restoring the previous release.
        #[arg(long)]
        no_rollback: bool,
        /// Time budget of the automatic rollback (its own, not what is left of the readiness timeout).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
        rollback_timeout: Duration,
    },
    /// The installed release, its workloads, control-plane and data-plane versions.
    Status {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Control-plane namespace.
        #[arg(long, default_value_t = action::default_namespace().to_string())]
        namespace: String,
    },
    /// Recorded releases.
    History {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[arg(long, default_value_t = action::default_namespace().to_string())]
        namespace: String,
    },
    /// Re-apply a recorded revision (default: the previous successful one).
    Rollback {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Revision to restore.
        #[arg(long)]
        to: Option<u32>,
        #[arg(long, default_value_t = action::default_namespace().to_string())]
        namespace: String,
        #[arg(short = 'y', long = "yes")]
        yes: bool,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
        readiness_timeout: Duration,
    },
    /// Data-plane proxies: which workloads run which version, and rolling restarts.
    Dataplane {
        #[command(subcommand)]
        command: DataplaneCommand,
    },
    /// Render a bundle with values and print the manifest (no cluster needed).
    Template {
        #[command(flatten)]
        bundle: BundleArgs,
    },
    /// Start the simulator and narrate install, precheck, upgrade, data-plane restart,
    /// downgrade and a blocked two-minor jump (under a minute, no cluster needed).
    Demo {
        /// Directory with the shipped bundles (default: ./bundles).
        #[arg(long)]
        bundles: Option<PathBuf>,
        /// Keep the simulator running afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Inspect, test and audit policies (sandboxed WebAssembly checks).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run a local Kubernetes-API-compatible cluster (for tests, the demo and policy authors).
    Sim(meshup_sim::cli::SimArgs),
    /// This client's version, WIT package and builtin policy digests, and the control plane
    /// that runs on the cluster.
    Version {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Only this client: do not ask the cluster.
        #[arg(long)]
        client: bool,
    },
    /// Shell completions for bash, zsh, fish, elvish or powershell, on stdout
    /// (e.g. `meshup completion bash > /etc/bash_completion.d/meshup`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff), generated from these flags (e.g. `meshup man | man -l -`).
    Man,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// The policies that run (from --policy-config, else the defaults), digests and grants.
    List,
    /// Metadata, declared reads, imports/exports, sha256 and size of a policy.
    Inspect {
        /// FILE.wasm or builtin:NAME.
        target: String,
    },
    /// Evaluate a policy offline; exit 3 when it returns an error finding.
    Test {
        /// FILE.wasm or builtin:NAME.
        target: String,
        /// The context (JSON, the PolicyContext format).
        #[arg(long, value_name = "FILE")]
        context: PathBuf,
        /// Cluster objects answering reads (multi-document YAML).
        #[arg(long, value_name = "FILE")]
        objects: Option<PathBuf>,
        /// The policy's config (JSON); default: its metadata default-config.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Re-run the evaluations of --audit-log and confirm identical findings.
    Replay {
        /// Only the record on this line (1-based).
        #[arg(long)]
        line: Option<usize>,
    },
}

impl Global {
    fn json(&self) -> bool {
        self.output == Format::Json
    }
    fn runtime(&self, audit: bool) -> RuntimeOptions {
        RuntimeOptions {
            cache_dir: None,
            audit_log: if audit { self.audit_log.clone() } else { None },
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DataplaneCommand {
    /// Workloads whose sidecars do not match the control plane, with restart commands.
    Status {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[arg(long = "control-plane-namespace", default_value_t = action::default_namespace().to_string())]
        control_plane_namespace: String,
    },
    /// Rolling-restart outdated workloads, namespace by namespace.
    Restart {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Only these namespaces (repeatable; default: every namespace with outdated proxies).
        #[arg(long = "namespace", short = 'n')]
        namespaces: Vec<String>,
        #[arg(long = "control-plane-namespace", default_value_t = action::default_namespace().to_string())]
        control_plane_namespace: String,
        /// Restarts in flight at once within a namespace.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// How long each rollout may take.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "300s")]
        timeout: Duration,
        /// List what would be restarted; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version itself; usage errors are bad input (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Code::BadInput as u8
            } else {
                0
            });
        }
    };
    init_tracing();
    let result = commands::run_async(cli);
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            // Errors may quote a policy's text (a refusal reason, a panic message).
            eprintln!("error: {}", crate::base::text::escape(&format!("{err:#}")));
            ExitCode::from(exit::code_of(&err) as u8)
        }
    }
}

/// Logs go to stderr, off unless RUST_LOG asks for them.
fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
