//! How the CLI talks to people: status lines on stdout, problems on stderr, the error
//! chain on one line each, and questions at the terminal ([`ask`]). Nothing printed here
//! may contain an unmasked API key; callers only ever pass masked values.

use std::fmt;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// The longest answer [`ask`] reads (a terminal's own line limit is 4 KiB).
const MAX_ANSWER: u64 = 4096;

/// The terminal's settings while an answer is read with echo off: a Ctrl-C puts them back
/// before the process ends, whatever the shell (bash restores a terminal after a job it
/// ran is killed; dash and other `sh` do not).
#[cfg(unix)]
static ECHO_OFF_OVER: Mutex<Option<rustix::termios::Termios>> = Mutex::new(None);

/// Whether [`ask`] is waiting for an answer (what a Ctrl-C then interrupted).
static ASKING: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler of a command that asks questions (once): the terminal's
/// settings are restored and the command ends with 130, saying it was interrupted.
fn exit_on_ctrl_c() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let Ok(mut installed) = INSTALLED.lock() else {
        return;
    };
    if *installed {
        return;
    }
    crate::interrupt::on_ctrl_c(|| {
        restore_echo();
        let what = if ASKING.load(Ordering::SeqCst) {
            "interrupted at the prompt: nothing was saved"
        } else {
            "interrupted"
        };
        let _ = writeln!(std::io::stderr().lock(), "\n{what}");
        std::process::exit(130);
    });
    *installed = true;
}

/// Puts back the settings [`ECHO_OFF_OVER`] holds, if any.
fn restore_echo() {
    #[cfg(unix)]
    if let Ok(mut saved) = ECHO_OFF_OVER.lock()
        && let Some(original) = saved.take()
    {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &original,
        );
    }
}

/// Echo off on standard input (a terminal) until dropped.
struct EchoOff;

impl EchoOff {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
            let original = tcgetattr(std::io::stdin())?;
            let mut quiet = original.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            // The line break still shows, so what follows starts on a line of its own.
            quiet.local_modes.insert(LocalModes::ECHONL);
            if let Ok(mut saved) = ECHO_OFF_OVER.lock() {
                *saved = Some(original);
            }
            tcsetattr(std::io::stdin(), OptionalActions::Flush, &quiet)?;
        }
        Ok(Self)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        restore_echo();
    }
}

/// Asks `question` on stderr and reads one line from standard input, which must be a
/// terminal ([`stdin_is_tty`]); `hidden` reads it with echo off (an API key). The line
/// comes back without its line break; `None` is end of input (Ctrl-D), which callers
/// take as "stop" rather than asking again. Ctrl-C ends the command (exit 130) with the
/// terminal as it was.
pub fn ask(question: &str, hidden: bool) -> anyhow::Result<Option<String>> {
    exit_on_ctrl_c();
    ASKING.store(true, Ordering::SeqCst);
    let answer = read_answer(question, hidden);
    ASKING.store(false, Ordering::SeqCst);
    answer
}

fn read_answer(question: &str, hidden: bool) -> anyhow::Result<Option<String>> {
    {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
    }
    let echo_off = if hidden { Some(EchoOff::new()?) } else { None };
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_ANSWER + 1)
        .read_until(b'\n', &mut bytes);
    drop(echo_off);
    read?;
    let Some(line) = bytes.strip_suffix(b"\n") else {
        if bytes.len() as u64 > MAX_ANSWER {
            anyhow::bail!("the answer is longer than {MAX_ANSWER} bytes");
        }
        // Ctrl-D: on an empty line, or after some text (which is then not an answer).
        let _ = writeln!(std::io::stderr().lock());
        return Ok(None);
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some(String::from_utf8_lossy(line).into_owned()))
}
