//! `meshup sim` flags and entry point.

use crate::{Sim, SimConfig, WebhookBackends};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Multi-document Kubernetes YAML to load at start.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Where to write a kubeconfig for this simulator.
    #[arg(long, default_value = "meshup-sim.kubeconfig")]
    pub kubeconfig_out: PathBuf,
    /// Delay from pod creation to Ready, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub ready_delay_ms: u64,
    /// Fault configuration (YAML); change at run time with PUT /sim/v1/faults.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// Kubernetes version reported by /version.
    #[arg(long, default_value = crate::DEFAULT_K8S_VERSION)]
    pub kubernetes_version: String,
    /// What the servers behind mutating webhooks do (YAML; none run).
    #[arg(long, value_name = "FILE")]
    pub webhook_backends: Option<PathBuf>,
}

/// Runs the simulator until SIGINT/SIGTERM; `--webhook-backends FILE`
/// replaces `default_backends`.
pub async fn run(args: SimArgs, default_backends: WebhookBackends) -> anyhow::Result<()> {
    let webhook_backends = match &args.webhook_backends {
        Some(path) => WebhookBackends::from_file(path)?,
        None => default_backends,
    };
    let sim = Sim::start(SimConfig {
        port: args.port,
        seed: args.seed.clone(),
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        faults: args.faults.clone(),
        kubernetes_version: args.kubernetes_version.clone(),
        webhook_backends,
        ..SimConfig::default()
    })
    .await?;
    sim.write_kubeconfig(&args.kubeconfig_out)?;
    let kc = std::fs::canonicalize(&args.kubeconfig_out).unwrap_or(args.kubeconfig_out.clone());
    println!("kubeconfig: {}", kc.display());
    println!("listening on {}", sim.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
