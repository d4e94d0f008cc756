//! `meshup demo`: the main job end to end on the built-in simulator, narrated.
//!
//! The simulator runs in-process but is reached exactly as a real cluster is: through a
//! kubeconfig and the `kube` client over HTTP. Every step is a real action.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::present::{self, Narrator, demo};
use crate::action::Env;
use crate::action::upgrade::{Mode, Upgrade};
use crate::base::exit::{Code, Exit};
use crate::cli::exit::code_of;
use crate::cli::ui::{Format, Ui};
use crate::cluster::client::{FIELD_MANAGER, Target};
use crate::cluster::kube::Kube;
use crate::engine::checks::Overrides;
use crate::engine::plan::DiffMode;
use crate::release::source::Inputs;

pub struct Demo {
    /// Directory holding the shipped bundles.
    pub bundles: Option<PathBuf>,
    /// Keep the simulator running at the end (prints how to reach it).
    pub keep: bool,
}

/// Find `bundles/`: given, next to the working directory, or in the source tree.
pub fn bundles_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidates = [
        given.map(Path::to_path_buf),
        Some(PathBuf::from("bundles")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("istio-1.7.8/bundle.yaml").is_file())
        .ok_or_else(|| {
            Exit::bad_input(
                "cannot find the shipped bundles; pass --bundles DIR (the repository's bundles/)",
            )
            .into()
        })
}

const WORKLOADS: &[(&str, &str, u32)] = &[
    ("shop", "frontend", 2),
    ("shop", "cart", 2),
    ("shop", "checkout", 1),
    ("bookinfo", "reviews", 3),
    ("bookinfo", "ratings", 1),
];

impl Demo {
    pub async fn run(&self, format: Format) -> anyhow::Result<Code> {
        let started = Instant::now();
        let ui = Ui::new(format);
        let bundles = bundles_dir(self.bundles.as_deref())?;
        let dir = std::env::temp_dir().join(format!("meshup-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let story = Story::start(&ui, bundles, dir.join("kubeconfig")).await?;
        story.install().await?;
        story.deploy_workloads().await?;
        story.precheck().await?;
        story.upgrade().await?;
        story.restart_data_plane().await?;
        story.downgrade().await?;
        story.failing_upgrade().await?;
        story.blocked_jump().await?;
        story.history().await?;
        story.end(started, self.keep).await?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Code::Ok)
    }
}

/// The demo under way: its simulated cluster and what each narrated step needs to act on
/// it. One method per step, in the order they are told.
struct Story<'a> {
    ui: &'a Ui,
    sim: meshup_sim::Sim,
    kubeconfig: PathBuf,
    env: Env,
    bundles: PathBuf,
}

impl<'a> Story<'a> {
    async fn start(ui: &'a Ui, bundles: PathBuf, kubeconfig: PathBuf) -> anyhow::Result<Story<'a>> {
        demo::step(
            ui,
            1,
            "Start the simulator: a Kubernetes API on loopback with simulated controllers.",
        );
        let sim = meshup_sim::Sim::start(meshup_sim::SimConfig {
            ready_delay: Duration::from_millis(200),
            // Inside the supported range of both releases the demo uses (Istio's published
            // ranges: 1.7 supports Kubernetes 1.16-1.18, 1.8 supports 1.16-1.19).
            kubernetes_version: "v1.18.20".into(),
            webhook_backends: crate::cli::sim_webhooks::shipped()?,
            ..Default::default()
        })
        .await?;
        sim.write_kubeconfig(&kubeconfig)?;
        demo::simulator(ui, &sim.url(), &kubeconfig);
        let env = Env::new(Target {
            kubeconfig: Some(kubeconfig.clone()),
            context: None,
        });
        Ok(Story {
            ui,
            sim,
            kubeconfig,
            env,
            bundles,
        })
    }

    async fn install(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            2,
            "Install Istio 1.7.8 (the oldest-but-one bundle) with the default profile.",
        );
        self.run(Mode::Install, "istio-1.7.8", Code::Ok).await
    }

    async fn deploy_workloads(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            3,
            "Deploy workloads in two injected namespaces: their pods get 1.7.8 sidecars.",
        );
        let conn = self.env.connect().await?;
        seed_workloads(conn.kube.as_ref()).await?;
        wait_workloads(conn.kube.as_ref()).await?;
        let status = crate::action::status::Status {
            namespace: None,
            discovery: crate::release::shipped::newest().discovery.clone(),
        };
        present::status(self.ui, &status.run(&self.env).await?)?;
        Ok(())
    }

    async fn precheck(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            4,
            "Precheck the upgrade to 1.8.6: every policy runs in its sandbox; nothing changes.",
        );
        self.run(Mode::Precheck, "istio-1.8.6", Code::Ok).await
    }

    async fn upgrade(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            5,
            "Upgrade in place to 1.8.6, component by component, waiting on each with a watch.",
        );
        self.run(Mode::Upgrade, "istio-1.8.6", Code::Ok).await
    }

    async fn restart_data_plane(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            6,
            "Restart the data plane so the workloads pick up 1.8.6 proxies.",
        );
        let restart = crate::action::dataplane::DataplaneRestart {
            control_plane_namespace: None,
            namespaces: vec![],
            concurrency: 4,
            timeout: Duration::from_secs(60),
            dry_run: false,
            discovery: crate::release::shipped::newest().discovery.clone(),
        };
        let restarted = restart.run(&self.env, &Narrator::new(self.ui)).await;
        expect(
            restarted.and_then(|r| present::dataplane_restart(self.ui, &r)),
            Code::Ok,
        )?;
        let dataplane = crate::action::dataplane::DataplaneStatus {
            namespace: None,
            discovery: crate::release::shipped::newest().discovery.clone(),
        };
        present::dataplane_status(self.ui, &dataplane.run(&self.env).await?)?;
        Ok(())
    }

    async fn downgrade(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            7,
            "Downgrade back to 1.7.8: the same command with the older bundle, the same checks.",
        );
        self.run(Mode::Upgrade, "istio-1.7.8", Code::Ok).await
    }

    async fn failing_upgrade(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            8,
            "A failing upgrade: 1.8.6's istiod never becomes ready (a fault injected into the simulator). meshup puts back what it changed, verifies it, and says so (exit 5).",
        );
        self.sim.set_faults(meshup_sim::FaultConfig {
            never_ready: vec!["istiod".into()],
            ..Default::default()
        });
        // istiod never becomes ready: a short wait keeps the demo quick.
        let readiness = Duration::from_secs(4);
        self.run_within(Mode::Upgrade, "istio-1.8.6", readiness, Code::RolledBack)
            .await?;
        self.sim.set_faults(meshup_sim::FaultConfig::default());
        Ok(())
    }

    async fn blocked_jump(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            9,
            "Try to jump two minors, 1.7.8 → 1.9.5: the skew policy blocks it (exit 3), nothing changes.",
        );
        self.run(Mode::Upgrade, "istio-1.9.5", Code::Blocked).await
    }

    async fn history(&self) -> anyhow::Result<()> {
        demo::step(
            self.ui,
            10,
            "History: every run is recorded in the cluster.",
        );
        let history = crate::action::history::ListHistory { namespace: None };
        present::history(self.ui, &history.run(&self.env).await?)?;
        Ok(())
    }

    /// How long it took; with `--keep`, the simulator stays up until Ctrl-C.
    async fn end(self, started: Instant, keep: bool) -> anyhow::Result<()> {
        demo::complete(self.ui, started.elapsed());
        if keep {
            demo::kept(self.ui, &self.sim.url(), &self.kubeconfig);
            tokio::signal::ctrl_c().await?;
        }
        self.sim.shutdown().await;
        Ok(())
    }

    /// One install/precheck/upgrade step with -y, which must end with `want`.
    async fn run(&self, mode: Mode, bundle: &str, want: Code) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(60);
        self.run_within(mode, bundle, timeout, want).await
    }

    /// The same with its own readiness timeout.
    async fn run_within(
        &self,
        mode: Mode,
        bundle: &str,
        readiness_timeout: Duration,
        want: Code,
    ) -> anyhow::Result<()> {
        let run = Upgrade {
            mode,
            target: crate::release::Target::Bundle(self.bundles.join(bundle)),
            inputs: Inputs::default(),
            yes: true,
            dry_run: false,
            overrides: Overrides::default(),
            readiness_timeout,
            rollback_timeout: Duration::from_secs(60),
            no_rollback: false,
            diff: DiffMode::Summary,
            from: None,
        };
        let report = run.run(&self.env, &Narrator::new(self.ui)).await;
        expect(report.and_then(|r| present::upgrade(self.ui, &r)), want)
    }
}

/// A demo step must end as the story says; anything else stops the demo with why.
fn expect(result: anyhow::Result<Code>, want: Code) -> anyhow::Result<()> {
    let got = match &result {
        Ok(c) => *c,
        Err(e) => code_of(e),
    };
    if got == want {
        if let Err(e) = result {
            demo::as_expected(&e);
        }
        return Ok(());
    }
    match result {
        Err(e) => Err(e.context(format!("demo step expected exit {}", want as u8))),
        Ok(c) => Err(anyhow::anyhow!(
            "demo step ended with exit {} instead of {}",
            c as u8,
            want as u8
        )),
    }
}

async fn seed_workloads(cluster: &dyn Kube) -> anyhow::Result<()> {
    for ns in ["shop", "bookinfo"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"istio-injection": "enabled"}}});
        cluster.apply(&obj, false, FIELD_MANAGER).await?;
    }
    for (ns, name, replicas) in WORKLOADS {
        let labels = json!({"app": name});
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels},
                    "spec": {"containers": [{"name": name, "image": format!("example.com/{name}:1.0")}]}}}});
        cluster.apply(&obj, false, FIELD_MANAGER).await?;
    }
    Ok(())
}

async fn wait_workloads(cluster: &dyn Kube) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (ns, name, _) in WORKLOADS {
        cluster
            .wait_rolled_out("Deployment", ns, name, deadline, &mut |_, _, _| {})
            .await?;
    }
    Ok(())
}
