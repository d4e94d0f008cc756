//! What a kubectl user expects of a CLI beside its commands: shell completions and a manual
//! page, both generated from the flags themselves (clap's generators), so they never drift.

use std::io::Write as _;

use clap::CommandFactory;

use crate::base::exit::Code;
use crate::cli::Cli;

pub fn completion(shell: clap_complete::Shell) -> anyhow::Result<Code> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "meshup", &mut out);
    to_stdout(&out)
}

pub fn man() -> anyhow::Result<Code> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    to_stdout(&out)
}

/// Write it all; a reader that stops early (`| head`) is no error.
fn to_stdout(bytes: &[u8]) -> anyhow::Result<Code> {
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Code::Ok),
        r => r.map(|_| Code::Ok).map_err(Into::into),
    }
}
