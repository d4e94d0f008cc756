//! Running each subcommand: its flags become an action's options, the action runs, and
//! `present` prints its report. One small function per subcommand family.

use std::time::Duration;

use super::{
    ApplyArgs, BundleArgs, CheckArgs, Cli, ClusterArgs, Command, DataplaneCommand, FromArgs,
    Global, PolicyCommand, demo, present,
};
use crate::action::{self, Env};
use crate::base::exit::Code;
use crate::cli::conventions;
use crate::cli::policy as policy_cmd;
use crate::cli::present::Narrator;
use crate::cli::ui::Ui;
use crate::cluster::client::Target;
use crate::engine::checks::Overrides;
use crate::engine::plan::DiffMode;

/// Every subcommand runs on one async runtime, started here.
pub fn run_async(cli: Cli) -> anyhow::Result<Code> {
    let rt = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    rt.block_on(run(cli))
}

/// Hands each subcommand's flags to the function that runs it.
async fn run(cli: Cli) -> anyhow::Result<Code> {
    use action::upgrade::Mode;
    let g = &cli.global;
    let ui = &Ui::new(g.output);
    match cli.command {
        Command::Install {
            cluster,
            bundle,
            checks,
            apply,
        } => {
            let run = upgrade_of(Mode::Install, &bundle, checks, &apply);
            upgrade(g, ui, &cluster, run, apply.history_max).await
        }
        Command::Upgrade {
            cluster,
            bundle,
            checks,
            apply,
            from,
            no_rollback,
            rollback_timeout,
        } => {
            let run = action::upgrade::Upgrade {
                no_rollback,
                rollback_timeout,
                from: from.installed(),
                ..upgrade_of(Mode::Upgrade, &bundle, checks, &apply)
            };
            upgrade(g, ui, &cluster, run, apply.history_max).await
        }
        Command::Precheck {
            cluster,
            bundle,
            checks,
            from,
            diff,
        } => precheck(g, ui, &cluster, &bundle, checks, &from, diff).await,
        Command::Status { cluster, namespace } => status(g, ui, &cluster, namespace).await,
        Command::History { cluster, namespace } => history(g, ui, &cluster, namespace).await,
        Command::Rollback {
            cluster,
            to,
            namespace,
            yes,
            readiness_timeout,
        } => {
            let run = action::rollback::Rollback {
                to,
                namespace: Some(namespace),
                yes,
                readiness_timeout,
            };
            rollback(g, ui, &cluster, run).await
        }
        Command::Dataplane { command } => dataplane(g, ui, command).await,
        Command::Template { bundle } => template(&bundle),
        Command::Demo { bundles, keep } => demo::Demo { bundles, keep }.run(g.output).await,
        Command::Policy(cmd) => policy(g, cmd).await,
        Command::Sim(args) => sim(args).await,
        Command::Version { cluster, client } => version(g, ui, &cluster, client).await,
        Command::Completion { shell } => conventions::completion(shell),
        Command::Man => conventions::man(),
    }
}

/// The upgrade action as the flags describe it (install's automatic restore: 300 s).
fn upgrade_of(
    mode: action::upgrade::Mode,
    bundle: &BundleArgs,
    checks: CheckArgs,
    apply: &ApplyArgs,
) -> action::upgrade::Upgrade {
    action::upgrade::Upgrade {
        mode,
        target: bundle.target(),
        inputs: bundle.inputs(),
        yes: apply.yes,
        dry_run: apply.dry_run,
        overrides: Overrides {
            force: checks.force,
            ignore: checks.ignore,
        },
        readiness_timeout: apply.readiness_timeout,
        rollback_timeout: Duration::from_secs(300),
        no_rollback: false,
        diff: apply.diff,
        from: None,
    }
}

/// Run an install/upgrade/precheck, narrating it, and print its report.
async fn upgrade(
    g: &Global,
    ui: &Ui,
    cluster: &ClusterArgs,
    run: action::upgrade::Upgrade,
    history_max: usize,
) -> anyhow::Result<Code> {
    let env = env(g, cluster, history_max);
    let report = run.run(&env, &Narrator::new(ui)).await?;
    present::upgrade(ui, &report)
}

/// `meshup precheck`: the upgrade run up to its checks, changing nothing.
async fn precheck(
    g: &Global,
    ui: &Ui,
    cluster: &ClusterArgs,
    bundle: &BundleArgs,
    checks: CheckArgs,
    from: &FromArgs,
    diff: DiffMode,
) -> anyhow::Result<Code> {
    let apply = ApplyArgs {
        yes: false,
        dry_run: false,
        readiness_timeout: Duration::ZERO,
        diff,
        history_max: 10,
    };
    let run = action::upgrade::Upgrade {
        no_rollback: true,
        rollback_timeout: Duration::ZERO,
        from: from.installed(),
        ..upgrade_of(action::upgrade::Mode::Precheck, bundle, checks, &apply)
    };
    upgrade(g, ui, cluster, run, apply.history_max).await
}

async fn rollback(
    g: &Global,
    ui: &Ui,
    cluster: &ClusterArgs,
    run: action::rollback::Rollback,
) -> anyhow::Result<Code> {
    let report = run.run(&env(g, cluster, 10), &Narrator::new(ui)).await?;
    present::rollback(ui, &report)
}

async fn version(g: &Global, ui: &Ui, cluster: &ClusterArgs, client: bool) -> anyhow::Result<Code> {
    let version = action::version::Version {
        client_only: client,
        discovery: crate::release::shipped::newest().discovery.clone(),
    };
    present::version(ui, &version.run(&env(g, cluster, 10)).await?)
}

async fn status(
    g: &Global,
    ui: &Ui,
    cluster: &ClusterArgs,
    namespace: String,
) -> anyhow::Result<Code> {
    let status = action::status::Status {
        namespace: Some(namespace),
        discovery: crate::release::shipped::newest().discovery.clone(),
    };
    present::status(ui, &status.run(&env(g, cluster, 10)).await?)
}

async fn history(
    g: &Global,
    ui: &Ui,
    cluster: &ClusterArgs,
    namespace: String,
) -> anyhow::Result<Code> {
    let history = action::history::ListHistory {
        namespace: Some(namespace),
    };
    present::history(ui, &history.run(&env(g, cluster, 10)).await?)
}

async fn dataplane(g: &Global, ui: &Ui, command: DataplaneCommand) -> anyhow::Result<Code> {
    match command {
        DataplaneCommand::Status {
            cluster,
            control_plane_namespace,
        } => {
            let status = action::dataplane::DataplaneStatus {
                namespace: Some(control_plane_namespace),
                discovery: crate::release::shipped::newest().discovery.clone(),
            };
            present::dataplane_status(ui, &status.run(&env(g, &cluster, 10)).await?)
        }
        DataplaneCommand::Restart {
            cluster,
            namespaces,
            control_plane_namespace,
            concurrency,
            timeout,
            dry_run,
        } => {
            let restart = action::dataplane::DataplaneRestart {
                control_plane_namespace: Some(control_plane_namespace),
                namespaces,
                concurrency,
                timeout,
                dry_run,
                discovery: crate::release::shipped::newest().discovery.clone(),
            };
            let env = env(g, &cluster, 10);
            let restarted = restart.run(&env, &Narrator::new(ui)).await?;
            present::dataplane_restart(ui, &restarted)
        }
    }
}

fn template(bundle: &BundleArgs) -> anyhow::Result<Code> {
    let template = action::template::Template {
        target: bundle.target(),
        inputs: bundle.inputs(),
    };
    print!("{}", template.run()?);
    Ok(Code::Ok)
}

/// Policies are synchronous, and wasmtime-wasi's sync bindings must not block an async
/// worker: they run on the blocking pool, as in the upgrade flow.
async fn policy(g: &Global, cmd: PolicyCommand) -> anyhow::Result<Code> {
    let g = g.clone();
    tokio::task::spawn_blocking(move || run_policy(&g, cmd)).await?
}

fn run_policy(g: &Global, cmd: PolicyCommand) -> anyhow::Result<Code> {
    match cmd {
        PolicyCommand::List => {
            policy_cmd::list(g.policy_config.as_deref(), g.runtime(false), g.json())
        }
        PolicyCommand::Inspect { target } => {
            policy_cmd::inspect(&target, g.runtime(false), g.json())
        }
        PolicyCommand::Test {
            target,
            context,
            objects,
            config,
        } => policy_cmd::test(
            policy_cmd::TestArgs {
                target,
                context,
                objects,
                config,
            },
            g.runtime(true),
            g.json(),
        ),
        PolicyCommand::Replay { line } => {
            policy_cmd::replay(g.audit_log.as_deref(), line, g.runtime(false), g.json())
        }
    }
}

async fn sim(args: meshup_sim::cli::SimArgs) -> anyhow::Result<Code> {
    meshup_sim::cli::run(args, crate::cli::sim_webhooks::shipped()?).await?;
    Ok(Code::Ok)
}

/// Where the cluster is and what runs against it, from the global flags.
fn env(g: &Global, cluster: &ClusterArgs, history_max: usize) -> Env {
    let mut env = Env::new(Target {
        kubeconfig: g.kubeconfig.clone(),
        context: cluster.context.clone(),
    });
    env.history_max = history_max;
    env.policy_config = g.policy_config.clone();
    env.audit_log = g.audit_log.clone();
    env
}
