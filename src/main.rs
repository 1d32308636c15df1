//! The `sealer` command: parses flags, calls `sealer::ops`, renders results.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
