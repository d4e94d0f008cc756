//! Command-line surface. Each subcommand fills an options struct and calls one action.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{self, Code};

#[derive(Parser, Debug)]
#[command(
    name = "meshup",
    version,
    about = "Safe in-place upgrades of a service-mesh control plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local Kubernetes-API-compatible cluster (for tests, the demo and policy authors).
    Sim(meshup_sim::cli::SimArgs),
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
    match cli.command {
        Command::Sim(args) => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(meshup_sim::cli::run(args))?;
            Ok(Code::Ok)
        }
    }
}
