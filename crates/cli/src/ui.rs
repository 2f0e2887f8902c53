//! How the CLI talks to people: status lines on stdout, problems on stderr, the error
//! chain on one line each. Nothing printed here may contain an unmasked API key; callers
//! only ever pass masked values.

use std::io::{IsTerminal, Write};

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
    println!("{text}");
}

/// `✓`/`✗` marks for check lists.
pub fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "FAIL" }
}
