//! Command-line surface. Each subcommand fills an options struct and calls one action.

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::{self, Code};
use crate::policy::{RuntimeOptions, commands as policy_cmd};

#[derive(Parser, Debug)]
#[command(
    name = "meshup",
    version,
    about = "Safe in-place upgrades of a service-mesh control plane"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Policy configuration (YAML): which policies run, pins, grants, limits.
    #[arg(long, global = true, value_name = "FILE")]
    pub policy_config: Option<PathBuf>,
    /// Append one JSON line per policy evaluation to FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Output format; `json` prints one JSON document and nothing else on stdout.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

impl Global {
    fn json(&self) -> bool {
        self.output == Output::Json
    }
    fn runtime(&self, audit: bool) -> RuntimeOptions {
        RuntimeOptions {
            cache_dir: None,
            audit_log: if audit { self.audit_log.clone() } else { None },
            no_cache: false,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local Kubernetes-API-compatible cluster (for tests, the demo and policy authors).
    Sim(meshup_sim::cli::SimArgs),
    /// Inspect, test and audit policies (sandboxed WebAssembly checks).
    #[command(subcommand)]
    Policy(PolicyCommand),
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
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::code_of(&err) as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Code> {
    let g = cli.global;
    match cli.command {
        Command::Policy(cmd) => match cmd {
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
        },
        Command::Sim(args) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(meshup_sim::cli::run(args))?;
            Ok(Code::Ok)
        }
    }
}
