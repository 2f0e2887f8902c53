//! The command line, declared with clap. Help texts here are the CLI reference users
//! read, so they say what each command does, what it prints and how it exits.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::local_server::DEFAULT_PORT;
use crate::opencode_config::PluginSpec;

const AFTER_HELP: &str = "\
Examples:
  opencode-sync login                       # asks for the URL and API key
  opencode-sync login --url https://my-app-123.convex.cloud --api-key-stdin < key.txt
  OPENCODE_SYNC_URL=... OPENCODE_SYNC_API_KEY=... opencode-sync status
  opencode-sync setup                       # add the plugin to OpenCode's config
  opencode-sync verify                      # is OpenCode set up to load the plugin?
  opencode-sync config set syncReasoning true
  opencode-sync sync                        # backfill sessions made before the plugin
  opencode-sync serve                       # a local OpenSync server, no account needed
  opencode-sync login --local               # point the plugin at it

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

With --local, login points the plugin at the server `opencode-sync serve` runs on this
machine: it saves http://127.0.0.1:PORT (--port, default 7420) and that server's own API
key, read from (or, before the server's first run, generated into) the key file of its
data directory (--data, default $XDG_DATA_HOME/opencode-sync). Nothing is asked. The
credentials are saved whether the server runs or not; login says which.

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
    /// Add the plugin to OpenCode's config (global, or a project's with --project).
    #[command(after_help = SETUP_HELP)]
    Setup(SetupArgs),
    /// Backfill: send your whole OpenCode history (or what changed since the last sync).
    #[command(after_help = SYNC_HELP)]
    Sync(SyncArgs),
    /// Run a local OpenSync server (sync and read API, SQLite) on this machine.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Print the version.
    Version,
}

const SYNC_HELP: &str = "\
Reads OpenCode's store read-only (opencode.db in $XDG_DATA_HOME/opencode, default
~/.local/share/opencode; the older storage/ JSON tree when that is what exists), maps each
session and its messages exactly as the plugin does, and sends them: for each session the
session first, then its messages in order, several sessions in parallel, retrying 429, 5xx
and network errors with backoff. It is safe while OpenCode runs.

By default only sessions never synced from this machine, or changed since, are sent (a
record per session is kept in $XDG_STATE_HOME/opencode-sync/, default
~/.local/state/opencode-sync/, and written as each session completes: Ctrl-C stops cleanly
and the next run resumes). --all asks the server which sessions it has and sends the
others (plus local changes); --force sends every selected session again.

--flush alone delivers what the plugin queued in the outbox ($XDG_STATE_HOME/opencode-sync/
outbox) and nothing else; with any backfill option (--all, --force, --since, --project,
--session, --data-dir) it drains the outbox first, then backfills.

Examples:
  opencode-sync sync                          # what is new or changed since the last run
  opencode-sync sync --dry-run                # list what would be sent, send nothing
  opencode-sync sync --all                    # everything the server does not have yet
  opencode-sync sync --since 2025-06-01 --project ~/src/app
  opencode-sync sync --session ses_3f1c2ab9dffeXyZ --force
  opencode-sync sync --flush                  # only deliver the plugin's outbox
  opencode-sync sync --json                   # machine-readable summary

Exits 0 when everything selected was delivered, 1 when something failed (each failure is
listed with the server's reason), 130 when interrupted.";

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Deliver what the plugin queued in the outbox (alone: only that).
    #[arg(long)]
    pub flush: bool,
    /// Ask the server which sessions it has and send the ones it lacks (and local changes).
    #[arg(long, conflicts_with = "force")]
    pub all: bool,
    /// Send every selected session again, whole, whatever was synced before.
    #[arg(long)]
    pub force: bool,
    /// Only sessions updated on or after DATE (YYYY-MM-DD in local time, or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<f64>,
    /// Only sessions whose directory is PATH or inside it (repeatable).
    #[arg(long, value_name = "PATH")]
    pub project: Vec<PathBuf>,
    /// Only this session id (repeatable).
    #[arg(long, value_name = "ID")]
    pub session: Vec<String>,
    /// OpenCode's data directory (holding opencode.db or storage/), or a database file.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print what would be sent; send nothing and record nothing.
    #[arg(long, conflicts_with = "flush")]
    pub dry_run: bool,
    /// Sessions sent in parallel (1 to 16).
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub jobs: u8,
    /// Give up on a request after retrying it this long (the outbox: the whole drain);
    /// one request waits at most 30 s for an answer, or this long when shorter.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl SyncArgs {
    /// Whether a backfill was asked for (always, unless `--flush` came alone).
    pub fn backfill(&self) -> bool {
        !self.flush
            || self.all
            || self.force
            || self.since.is_some()
            || !self.project.is_empty()
            || !self.session.is_empty()
            || self.data_dir.is_some()
    }
}

/// `--since`: a date (midnight, local time) or an RFC 3339 time, as ms since the epoch.
fn parse_since(text: &str) -> Result<f64, String> {
    use jiff::{Timestamp, civil, tz::TimeZone};
    let text = text.trim();
    let timestamp = if let Ok(ts) = text.parse::<Timestamp>() {
        ts
    } else if let Ok(date) = text.parse::<civil::Date>() {
        date.to_zoned_datetime(TimeZone::system())
            .map_err(|e| e.to_string())?
            .timestamp()
    } else if let Ok(datetime) = text.parse::<civil::DateTime>() {
        datetime
            .to_zoned_datetime(TimeZone::system())
            .map_err(|e| e.to_string())?
            .timestamp()
    } else {
        return Err(format!(
            "expected a date like 2025-06-01 or an RFC 3339 time like 2025-06-01T09:30:00Z, not {text:?}"
        ));
    };
    Ok(timestamp.as_millisecond() as f64)
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
    /// Use the local server of `opencode-sync serve` (its URL and its own key).
    #[arg(long, conflicts_with_all = ["url", "api_key", "api_key_stdin"])]
    pub local: bool,
    /// With --local: the port `opencode-sync serve` listens on.
    #[arg(long, value_name = "PORT", requires = "local", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// With --local: the data directory `opencode-sync serve` uses.
    #[arg(long, value_name = "PATH", requires = "local")]
    pub data: Option<PathBuf>,
}

const SERVE_HELP: &str = "\
Runs an OpenSync-compatible server on this machine, so sessions sync without any account:
the sync API the plugin and `opencode-sync sync` use (/health, /sync/session,
/sync/message, /sync/batch, /sync/sessions/list) and OpenSync's read API, same routes and
answers (/api/sessions, /api/sessions/get?id=, /api/search?q= full text, /api/stats,
/api/export?id=&format=json|markdown|jsonl, one session or all, and /api/context?q= full
text), and a dashboard at / (sessions, search, filters by project, model and git branch,
export). A malformed query value (?limit=abc) gets a 400 that names it.

Everything is kept in the data directory (--data, default $XDG_DATA_HOME/opencode-sync,
i.e. ~/.local/share/opencode-sync; created 0700): opensync.db (SQLite) and server-key, the
server's own API key, generated on the first run (mode 0600, only ever shown masked).
Both survive restarts. Then `opencode-sync login --local` (with the same --port and
--data, if you changed them) points the plugin at this server.

Who may connect: by default it listens on 127.0.0.1 only. Sync routes always need the
key. Read routes (/api/*) answer requests from this machine without a key, so a browser
here can read them, but not other web sites' pages (cross-origin requests and names other
than localhost/127.0.0.1/[::1] need the key); --require-key makes reads need the key too.
To serve other machines, give --host ADDR (e.g. 0.0.0.0) together with --allow-remote:
every route then needs the key, reads included. Plugins on other machines only accept
https:// for a remote server, so put an HTTPS reverse proxy in front.

Examples:
  opencode-sync serve                            # http://127.0.0.1:7420
  opencode-sync serve --port 8080 --data ~/opensync-data
  opencode-sync serve --require-key              # reads need the key, even from here
  opencode-sync serve --host 0.0.0.0 --allow-remote

Stops cleanly on Ctrl-C or SIGTERM (requests in flight finish). Exits 0 once stopped, 1
when it cannot start (port in use, unusable data directory), 2 on bad arguments.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Data directory holding the database and the server's API key.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Address to listen on. Anything but loopback needs --allow-remote.
    #[arg(long, value_name = "ADDR", value_parser = parse_host, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Allow a non-loopback --host, serving other machines (every route then needs the key).
    #[arg(long)]
    pub allow_remote: bool,
    /// Reads (/api/*) need the API key even from this machine.
    #[arg(long)]
    pub require_key: bool,
}

/// `--host`: an IP address, or `localhost`.
fn parse_host(text: &str) -> Result<IpAddr, String> {
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("expected an IP address like 127.0.0.1, 0.0.0.0 or ::1, not {text:?}"))
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

const SETUP_HELP: &str = "\
Adds \"opencode-sync-plugin\" to the \"plugin\" list of OpenCode's global config,
$XDG_CONFIG_HOME/opencode/opencode.jsonc if it exists, else opencode.json (created when
missing; default ~/.config/opencode). With --project, the project's opencode.jsonc or
opencode.json instead. The file is edited in place: other settings, comments and
trailing commas stay as they are, and it is replaced atomically.

--plugin SPEC lists SPEC instead of the name: opencode-sync-plugin@VERSION (a pinned
release), or file:///ABSOLUTE/PATH/index.js, a local build of the plugin (the file must
exist, with the package's package.json beside it, e.g. npm/index.js of a checkout after
scripts/build). Other plugins are not set up here.

Nothing changes when the plugin is already listed there in any form: the name, a pinned
name@version, a file:// path to a build of it, or a [spec, {options}] tuple. A second
entry would make OpenCode load two copies, each syncing every session. So when --plugin
asks for another form than the one listed, setup keeps the listed one and says so
(\"already lists the plugin as X; not adding Y\"): to switch, replace the entry in the
file, or remove it and run setup again.

Examples:
  opencode-sync setup                 # all projects
  opencode-sync setup --project       # this git repository (or directory) only
  opencode-sync setup --dry-run       # show the change, write nothing
  opencode-sync setup --plugin opencode-sync-plugin@0.1.0
  opencode-sync setup --plugin file://$PWD/npm/index.js    # this checkout's build

Exits 0 when the plugin is listed (now, already, or in another form that is kept), 1
when the file cannot be edited (it is then left as it was), 2 on a bad SPEC.";

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Edit the project's config instead (DIR: default the current git repository's root,
    /// else the current directory).
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub project: Option<Option<PathBuf>>,
    /// Show the change without writing it.
    #[arg(long)]
    pub dry_run: bool,
    /// List SPEC instead of "opencode-sync-plugin": opencode-sync-plugin@VERSION, or
    /// file:///ABSOLUTE/PATH/index.js (a local build).
    #[arg(long, value_name = "SPEC", value_parser = PluginSpec::parse)]
    pub plugin: Option<PluginSpec>,
}
