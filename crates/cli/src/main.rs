//! `opencode-sync`: the command a user runs to connect OpenCode to OpenSync, check that
//! it works, and fix it when it does not. All decisions live in `opencode-sync-core`;
//! this binary reads files, talks HTTP and prints.

// Stdout goes through `ui::outln!`, which survives a closed pipe.
#![deny(clippy::print_stdout)]

mod cli;
mod commands;
mod config_store;
mod fsutil;
mod http;
mod interrupt;
mod local_server;
mod opencode_config;
mod opencode_store;
mod outbox_dir;
mod process_env;
mod sync_records;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => {
            ui::error(&err);
            ExitCode::FAILURE
        }
    }
}
