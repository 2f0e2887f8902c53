//! A home directory of its own for running the built `opencode-sync`, so tests never see
//! the developer's real config. Every run's output is checked: no panic, and no full API
//! key from [`TEST_KEYS`] in stdout or stderr. [`Sandbox::run_bounded`] (Linux) also
//! measures how long a run took and its peak memory, and kills one that hangs.

#![allow(dead_code)] // each test crate uses part of it

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
            // A command that refuses its input exits without reading it all: the pipe
            // is then closed, which is its answer, not a failure of the test.
            match child.stdin.take().unwrap().write_all(input.as_bytes()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => panic!("writing the command's stdin: {e}"),
            }
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

/// How a [`Sandbox::run_bounded`] run ended.
#[derive(Debug)]
pub struct BoundedOutput {
    /// The exit code; `None` when it was killed (it ran too long) or died of a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The highest resident memory seen (`VmHWM` of /proc/PID/status), in KiB.
    pub peak_kib: u64,
    /// Whether it was killed for running longer than [`BOUNDED_RUN_LIMIT`] or for
    /// passing [`MEMORY_CEILING_KIB`].
    pub killed: bool,
}

/// How long [`Sandbox::run_bounded`] lets a command run before killing it.
pub const BOUNDED_RUN_LIMIT: Duration = Duration::from_secs(5);
/// The peak memory a refusing command stays under (100 MB), in KiB; a run that passes it
/// is killed at once.
pub const MEMORY_CEILING_KIB: u64 = 100 * 1024;

impl Sandbox {
    /// Runs `opencode-sync ARGS` in `cwd` (the home when `None`) with `stdin`, sampling
    /// its peak memory every few milliseconds, and kills it after [`BOUNDED_RUN_LIMIT`] (or
    /// past [`MEMORY_CEILING_KIB`]) so a hang fails the test instead of hanging it, or the
    /// machine. Linux only (/proc).
    #[cfg(target_os = "linux")]
    pub fn run_bounded(&self, args: &[&str], stdin: Stdio, cwd: Option<&Path>) -> BoundedOutput {
        use std::io::Read;
        let mut cmd = self.command(args);
        cmd.current_dir(cwd.unwrap_or(self.home())).stdin(stdin);
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let pipe_reader = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                // Bounded too: a runaway command must not take the test's memory.
                let mut bytes = Vec::new();
                let _ = (&mut pipe).take(1 << 20).read_to_end(&mut bytes);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = pipe_reader(Box::new(child.stdout.take().unwrap()));
        let stderr = pipe_reader(Box::new(child.stderr.take().unwrap()));
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kib = 0;
        let mut killed = false;
        let status = loop {
            if let Ok(text) = fs::read_to_string(&status_file)
                && let Some(kib) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            // Over the memory ceiling already (reading `/dev/zero` takes gigabytes in
            // seconds): stopped now, not when the time is up.
            if started.elapsed() > BOUNDED_RUN_LIMIT || peak_kib > MEMORY_CEILING_KIB {
                killed = true;
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = started.elapsed();
        let output = BoundedOutput {
            code: status.code(),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
            elapsed,
            peak_kib,
            killed,
        };
        assert_clean_output(args, &output.stdout, &output.stderr, &[]);
        output
    }
}

/// Asserts that `opencode-sync ARGS` refused promptly and frugally: a non-zero exit
/// within 2 s, under 100 MB of memory at its peak, and a message (on stdout or stderr)
/// that contains each of `says` (the file's path, what is wrong with it).
pub fn assert_refused_promptly(args: &[&str], out: &BoundedOutput, says: &[&str]) {
    let shown = format!(
        "`opencode-sync {}` ({:?}, peak {} KiB, exit {:?}):\n{}\n{}",
        args.join(" "),
        out.elapsed,
        out.peak_kib,
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(
        out.peak_kib < MEMORY_CEILING_KIB,
        "too much memory: {shown}"
    );
    assert!(
        !out.killed,
        "still running after {BOUNDED_RUN_LIMIT:?}: {shown}"
    );
    assert!(out.elapsed < Duration::from_secs(2), "too slow: {shown}");
    assert!(
        out.code.is_some_and(|c| c != 0),
        "should fail with an exit code: {shown}"
    );
    for text in says {
        assert!(
            out.stdout.contains(text) || out.stderr.contains(text),
            "should say {text:?}: {shown}"
        );
    }
}

/// Makes a FIFO (named pipe) at `path`, creating its directory.
#[cfg(unix)]
pub fn mkfifo(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}
