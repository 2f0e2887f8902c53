//! One module per subcommand; [`run`] dispatches. Each command returns the exit code it
//! wants (0 healthy, 1 not) or an error, which `main` prints and turns into exit code 1.

mod backfill;
mod config;
mod login;
mod logout;
mod probe;
mod serve;
mod setup;
mod status;
mod sync;
mod verify;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::ui::outln;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Login(args) => login::run(&args),
        Command::Logout => logout::run(),
        Command::Status(args) => status::run(args.json),
        Command::Config(args) => config::run(args),
        Command::Verify(args) => verify::run(&args),
        Command::Setup(args) => setup::run(&args),
        Command::Sync(args) => sync::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Version => {
            outln!("opencode-sync {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Exit code for "ran fine, but the answer is no".
pub fn unhealthy() -> ExitCode {
    ExitCode::from(1)
}
