//! How the CLI talks to people: status lines on stdout, problems on stderr, the error
//! chain on one line each. Nothing printed here may contain an unmasked API key; callers
//! only ever pass masked values.

use std::fmt;
use std::io::{IsTerminal, Write};

/// `println!` for everything the CLI prints on stdout. `println!` panics when stdout is a
/// closed pipe (`opencode-sync sync --dry-run | head -1`); this drops the output instead
/// and lets the command finish its work (a sync half done because its reader went away
/// would be worse than output nobody reads).
macro_rules! outln {
    () => {
        $crate::ui::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::ui::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes to stdout, ignoring a closed or failing stdout (see [`outln!`]).
#[allow(clippy::print_stdout)]
pub fn out(args: fmt::Arguments<'_>) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Prints an error and its causes to stderr.
pub fn error(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
}

/// A warning that does not stop the command.
pub fn warn(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {message}");
}

/// Whether we may ask the user questions.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Prints a JSON value, pretty, to stdout.
pub fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    outln!("{text}");
}

/// `✓`/`✗` marks for check lists.
pub fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}
