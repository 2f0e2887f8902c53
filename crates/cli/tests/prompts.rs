//! `opencode-sync login`'s questions at a real terminal: the built binary runs in an
//! interactive shell (`sh`, `dash`, `bash`) inside a pseudo-terminal, and the test types
//! as a person would, Ctrl-C and Ctrl-D included. After the command, the shell's own
//! `stty -a` says whether the terminal echoes again, and `echo $?` how it ended.

#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

#[path = "support/sandbox.rs"]
mod sandbox;

use std::process::Command;

use rexpect::session::{PtySession, spawn_command};
use sandbox::{KEY, Sandbox};

/// What the shells print as their prompt (set through `PS1`).
const SHELL_PROMPT: &str = "PTY-SHELL-READY> ";
/// How long one expected text may take to show.
const EXPECT_MS: u64 = 20_000;
/// A URL nothing is asked at: the tests use `--no-verify`.
const URL: &str = "http://127.0.0.1:9";

/// The shells a user may run `login` from (`sh` is dash on Debian).
fn shells() -> Vec<&'static str> {
    ["sh", "dash", "bash"]
        .into_iter()
        .filter(|shell| {
            Command::new("sh")
                .args(["-c", &format!("command -v {shell}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect()
}

/// An interactive `shell` in a pseudo-terminal, in the sandbox's home, at its prompt.
fn interactive(sb: &Sandbox, shell: &str) -> PtySession {
    let mut cmd = Command::new(shell);
    if shell == "bash" {
        cmd.args(["--norc", "--noprofile"]);
    }
    cmd.arg("-i")
        .env_clear()
        .env("HOME", sb.home())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PS1", SHELL_PROMPT)
        .env("TERM", "dumb")
        .current_dir(sb.home());
    let mut pty = spawn_command(cmd, Some(EXPECT_MS)).unwrap();
    pty.exp_string(SHELL_PROMPT).unwrap();
    // The pseudo-terminal starts without echo; a person's terminal echoes.
    shell_run(&mut pty, "stty echo");
    pty
}

/// Runs `line` at the shell and returns what it printed up to the next prompt.
fn shell_run(pty: &mut PtySession, line: &str) -> String {
    pty.send_line(line).unwrap();
    pty.exp_string(SHELL_PROMPT)
        .unwrap_or_else(|e| panic!("`{line}`: {e}"))
}

/// Leaves the shell (an interactive shell ignores the SIGTERM the pty's drop would send,
/// and would be waited for).
fn exit_shell(mut pty: PtySession) {
    pty.send_line("exit").unwrap();
    pty.exp_eof().unwrap();
}

/// The exit status of the last command, as the shell says it.
fn last_status(pty: &mut PtySession) -> i32 {
    let out = shell_run(pty, "echo STATUS=$?");
    let at = out.rfind("STATUS=").unwrap() + "STATUS=".len();
    out[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no status in {out:?}"))
}

/// Whether the terminal echoes input, from `stty -a` (`echo` or `-echo`).
fn echo_is_on(pty: &mut PtySession) -> bool {
    let out = shell_run(pty, "stty -a");
    let words: Vec<&str> = out.split(|c: char| c.is_whitespace() || c == ';').collect();
    assert!(
        words.contains(&"echo") || words.contains(&"-echo"),
        "no echo flag in {out:?}"
    );
    words.contains(&"echo")
}

fn login_command(extra: &str) -> String {
    format!(
        "{} login --no-verify {extra}",
        env!("CARGO_BIN_EXE_opencode-sync")
    )
}

#[test]
fn ctrl_c_at_the_hidden_key_prompt_leaves_echo_on_in_every_shell() {
    for shell in shells() {
        let sb = Sandbox::new();
        let mut pty = interactive(&sb, shell);
        assert!(echo_is_on(&mut pty), "{shell}: echo is on to begin with");
        pty.send_line(&login_command(&format!("--url {URL}")))
            .unwrap();
        pty.exp_string("input hidden): ").unwrap();
        pty.send("osk_half").unwrap();
        pty.send_control('c').unwrap();
        let out = pty.exp_string(SHELL_PROMPT).unwrap();
        let status = last_status(&mut pty);
        assert!(
            echo_is_on(&mut pty),
            "{shell}: the terminal no longer echoes after Ctrl-C"
        );
        assert_eq!(status, 130, "{shell}");
        assert!(
            out.contains("interrupted at the prompt: nothing was saved"),
            "{shell}: {out:?}"
        );
        assert!(
            !out.contains("osk_half"),
            "{shell}: typed text echoed: {out:?}"
        );
        assert!(!sb.config_path().exists(), "{shell}: something was saved");
        exit_shell(pty);
    }
}

#[test]
fn ctrl_d_at_either_prompt_stops_with_a_message_instead_of_asking_again() {
    for shell in shells() {
        let sb = Sandbox::new();
        let mut pty = interactive(&sb, shell);

        // At the URL prompt.
        pty.send_line(&login_command("")).unwrap();
        pty.exp_string("Convex URL").unwrap();
        pty.send_control('d').unwrap();
        let out = pty.exp_string(SHELL_PROMPT).unwrap();
        assert!(
            out.contains("no URL given (end of input at the prompt); nothing was saved"),
            "{shell}: {out:?}"
        );
        assert!(!out.contains("API key ("), "{shell}: asked on: {out:?}");
        assert_eq!(last_status(&mut pty), 1, "{shell}");

        // At the hidden key prompt, after a wrong answer (which asks again).
        pty.send_line(&login_command(&format!("--url {URL}")))
            .unwrap();
        pty.exp_string("input hidden): ").unwrap();
        pty.send_line("not-a-key").unwrap();
        pty.exp_string("starts with \"osk_\"").unwrap();
        pty.exp_string("input hidden): ").unwrap();
        pty.send_control('d').unwrap();
        let out = pty.exp_string(SHELL_PROMPT).unwrap();
        assert!(
            out.contains("no API key given (end of input at the prompt); nothing was saved"),
            "{shell}: {out:?}"
        );
        assert_eq!(last_status(&mut pty), 1, "{shell}");
        assert!(echo_is_on(&mut pty), "{shell}");
        assert!(!sb.config_path().exists(), "{shell}: something was saved");
        exit_shell(pty);
    }
}

#[test]
fn a_typed_key_is_not_echoed_and_is_saved() {
    let sb = Sandbox::new();
    let mut pty = interactive(&sb, "sh");
    pty.send_line(&login_command("")).unwrap();
    pty.exp_string("Convex URL").unwrap();
    pty.send_line(URL).unwrap();
    pty.exp_string("input hidden): ").unwrap();
    pty.send_line(KEY).unwrap();
    let out = pty.exp_string(SHELL_PROMPT).unwrap();
    assert!(!out.contains(KEY), "the key was echoed: {out:?}");
    // (The pty reader sees bytes, so the mask's "…" is not matched as such.)
    assert!(
        out.contains("key osk_Test") && out.contains("0001 to"),
        "{out:?}"
    );
    assert_eq!(last_status(&mut pty), 0);
    assert!(echo_is_on(&mut pty));
    let saved = std::fs::read_to_string(sb.config_path()).unwrap();
    assert!(saved.contains(KEY));

    // The stored URL is offered again: an empty answer keeps it.
    pty.send_line(&login_command("")).unwrap();
    pty.exp_string(&format!("Convex URL [{URL}]: ")).unwrap();
    pty.send_line("").unwrap();
    pty.exp_string("input hidden): ").unwrap();
    pty.send_line(KEY).unwrap();
    let out = pty.exp_string(SHELL_PROMPT).unwrap();
    assert!(out.contains(&format!("Saved {URL}")), "{out:?}");
    assert_eq!(last_status(&mut pty), 0);
    exit_shell(pty);
}
