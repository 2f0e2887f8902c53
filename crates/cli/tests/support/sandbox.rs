//! A home directory of its own for running the built `opencode-sync`, so tests never see
//! the developer's real config. Every run's output is checked: no panic, and no full API
//! key from [`TEST_KEYS`] in stdout or stderr.

#![allow(dead_code)] // each test crate uses part of it

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The keys tests use. None may ever be printed.
pub const KEY: &str = "osk_TestKeyAbCdEfGhIjKlMnOpQrStUv0001";
pub const OTHER_KEY: &str = "osk_TestKeyZyXwVuTsRqPoNmLkJiHgFe0002";
pub const TEST_KEYS: &[&str] = &[KEY, OTHER_KEY];

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.home().join(".config/opencode-sync/config.json")
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.exec(args, None, None)
    }

    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.exec(args, None, Some(cwd))
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.exec(args, stdin, None)
    }

    /// The built `opencode-sync` with `args`, in this home: the environment cleared to
    /// `HOME`, `PATH` and what [`with_env`](Self::with_env) added, the home as working
    /// directory, output piped. For processes a test drives itself (a server); check
    /// what they print with [`assert_clean_output`].
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opencode-sync"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.home())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn exec(&self, args: &[&str], stdin: Option<&str>, cwd: Option<&Path>) -> Output {
        let mut cmd = self.command(args);
        cmd.current_dir(cwd.unwrap_or(self.home()))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_clean_output(args, &output.stdout, &output.stderr, &[]);
        output
    }
}

/// No panic, and no full API key (of [`TEST_KEYS`] or `secrets`) in what
/// `opencode-sync ARGS` printed.
pub fn assert_clean_output(args: &[&str], stdout: &str, stderr: &str, secrets: &[&str]) {
    for secret in TEST_KEYS.iter().chain(secrets) {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "`opencode-sync {}` printed a full API key:\n{stdout}\n{stderr}",
            args.join(" "),
        );
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "panic: {stderr}"
    );
}

/// Writes a file, creating its directory.
pub fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}
