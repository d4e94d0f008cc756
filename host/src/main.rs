use std::process::ExitCode;

fn main() -> ExitCode {
    meshup::cli::main()
}
