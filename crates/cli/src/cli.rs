//! The command line, declared with clap. Help texts here are the CLI reference users
//! read, so they say what each command does, what it prints and how it exits.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  opencode-sync login                       # asks for the URL and API key
  opencode-sync login --url https://my-app-123.convex.cloud --api-key-stdin < key.txt
  OPENCODE_SYNC_URL=... OPENCODE_SYNC_API_KEY=... opencode-sync status
  opencode-sync verify                      # is OpenCode set up to load the plugin?
  opencode-sync config set syncReasoning true

Files:
  $XDG_CONFIG_HOME/opencode-sync/config.json (default ~/.config/opencode-sync/config.json)
  holds the deployment URL, API key and options (mode 0600).

Environment:
  OPENCODE_SYNC_URL, OPENCODE_SYNC_API_KEY override the stored credentials.";

/// Sync your OpenCode sessions to an OpenSync dashboard.
#[derive(Debug, Parser)]
#[command(
    name = "opencode-sync",
    version,

    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store the deployment URL and API key, after checking them against the server.
    #[command(after_help = "\
The URL may be the dashboard's deployment URL (https://NAME.convex.cloud) or the HTTP
URL (https://NAME.convex.site); it is stored as the .site form. The key starts with
osk_ (OpenSync dashboard > Settings > Generate API Key).

Without flags, login asks on the terminal (the key is not echoed). In scripts, pass
--url and --api-key-stdin, or set OPENCODE_SYNC_URL and OPENCODE_SYNC_API_KEY; login
never waits for input when stdin is not a terminal.

Exits 0 when the credentials were verified and saved, 1 otherwise (nothing is saved).")]
    Login(LoginArgs),
    /// Remove the stored URL and API key (options are kept).
    Logout,
    /// Show whether sync works right now: credentials, server reachability, key validity.
    #[command(
        after_help = "Exits 0 when the server is reachable and accepts the key, 1 otherwise."
    )]
    Status(JsonFlag),
    /// Show the configuration file and settings, or change an option.
    Config(ConfigArgs),
    /// Check that credentials are present and that OpenCode will load the plugin.
    #[command(after_help = "\
Looks at OpenCode's global config (~/.config/opencode/opencode.json or .jsonc) and the
project's opencode.json or .jsonc (from the directory up to the git root), and prints the
fix for each problem. Exits 1 when something is missing.")]
    Verify(VerifyArgs),
    /// Print the version.
    Version,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Deployment URL (https://NAME.convex.cloud or .site, or a self-hosted https URL).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// API key (visible in your shell history and process list: prefer --api-key-stdin).
    #[arg(long, value_name = "osk_...", conflicts_with = "api_key_stdin")]
    pub api_key: Option<String>,
    /// Read the API key from the first line of standard input.
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Save without contacting the server.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub action: Option<ConfigAction>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the path of the configuration file.
    Path,
    /// Set an option: enabled, syncToolOutput, maxToolOutputBytes, syncReasoning, redact.
    Set {
        /// Option name.
        key: String,
        /// New value (true/false, or a number of bytes).
        value: String,
    },
    /// Reset an option to its default.
    Unset {
        /// Option name.
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Project directory to check (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
