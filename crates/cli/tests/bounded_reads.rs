//! Every file the CLI reads, and the key on standard input, is read bounded: the built
//! binary in a sandbox HOME, with a FIFO, `/dev/zero` (through a symlink) or a 100 MB
//! sparse file where a config, the server's key file or its database should be, and
//! `/dev/zero` piped into `login --api-key-stdin`. Each command must refuse within 2 s,
//! naming the file and what is wrong with it, with a non-zero exit and under 100 MB of
//! memory at its peak; one that hangs is killed after 5 s (or as soon as it passes
//! 100 MB) and fails the test.
//!
//! Linux only: peak memory is read from /proc/PID/status while the command runs.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[path = "support/sandbox.rs"]
mod sandbox;

use sandbox::{KEY, MEMORY_CEILING_KIB, Sandbox, assert_refused_promptly, mkfifo, write};

/// What a path is made into, and the words the refusal must use about it.
#[derive(Debug, Clone, Copy)]
enum Unreadable {
    Fifo,
    /// A symlink to `/dev/zero`: endless zeros.
    DevZero,
    /// A sparse file of 100 MB.
    Huge,
}

const ALL: [Unreadable; 3] = [Unreadable::Fifo, Unreadable::DevZero, Unreadable::Huge];

impl Unreadable {
    fn make(self, path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        match self {
            Self::Fifo => mkfifo(path),
            Self::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
            Self::Huge => File::create(path)
                .unwrap()
                .set_len(100 * 1024 * 1024)
                .unwrap(),
        }
    }

    fn says(self) -> &'static str {
        match self {
            Self::Fifo => "is a FIFO (named pipe), not a file",
            Self::DevZero => "is a device, not a file",
            Self::Huge => "is 100 MiB;",
        }
    }
}

fn global_opencode_json(sb: &Sandbox) -> PathBuf {
    sb.home().join(".config/opencode/opencode.json")
}

fn refused(sb: &Sandbox, args: &[&str], cwd: Option<&Path>, path: &Path, what: Unreadable) {
    let out = sb.run_bounded(args, Stdio::null(), cwd);
    let path = path.display().to_string();
    assert_refused_promptly(args, &out, &[&path, what.says()]);
}

#[test]
fn setup_refuses_an_opencode_json_that_is_no_readable_file() {
    for what in ALL {
        let sb = Sandbox::new();
        let file = global_opencode_json(&sb);
        what.make(&file);
        refused(&sb, &["setup"], None, &file, what);
        refused(&sb, &["setup", "--dry-run"], None, &file, what);
    }
}

#[test]
fn setup_project_refuses_a_project_opencode_json_that_is_no_readable_file() {
    for what in ALL {
        let sb = Sandbox::new();
        let project = sb.home().join("app");
        fs::create_dir_all(project.join(".git")).unwrap();
        let file = project.join("opencode.json");
        what.make(&file);
        refused(&sb, &["setup", "--project"], Some(&project), &file, what);
    }
}

#[test]
fn verify_reports_an_opencode_config_that_is_no_readable_file() {
    for what in ALL {
        let sb = Sandbox::new();
        let file = global_opencode_json(&sb);
        what.make(&file);
        // The refusal names the file and what it is; verify exits 1 for any problem.
        refused(&sb, &["verify"], None, &file, what);
    }
}

#[test]
fn serve_and_login_local_refuse_a_server_key_that_is_no_readable_file() {
    for what in ALL {
        let sb = Sandbox::new();
        let data = sb.home().join("data");
        let key_file = data.join("server-key");
        what.make(&key_file);
        let data_arg = data.display().to_string();
        // A port nothing listens on: the key is read before anything binds.
        let port = free_port();
        refused(
            &sb,
            &["serve", "--data", &data_arg, "--port", &port],
            None,
            &key_file,
            what,
        );
        refused(
            &sb,
            &["login", "--local", "--data", &data_arg, "--port", &port],
            None,
            &key_file,
            what,
        );
        assert!(
            !sb.config_path().exists(),
            "login --local saved nothing ({what:?})"
        );
    }
}

#[test]
fn serve_refuses_a_database_that_is_no_file() {
    for what in [Unreadable::Fifo, Unreadable::DevZero] {
        let sb = Sandbox::new();
        let data = sb.home().join("data");
        write(&data.join("server-key"), &format!("{KEY}\n"));
        let db = data.join("opensync.db");
        what.make(&db);
        let data_arg = data.display().to_string();
        let out = sb.run_bounded(
            &["serve", "--data", &data_arg, "--port", &free_port()],
            Stdio::null(),
            None,
        );
        let shown = db.display().to_string();
        let kind = match what {
            Unreadable::Fifo => "is a FIFO (named pipe), not a file",
            _ => "is a device, not a file",
        };
        assert_refused_promptly(&["serve"], &out, &[&shown, kind]);
    }
}

#[test]
fn login_api_key_stdin_refuses_endless_input() {
    let sb = Sandbox::new();
    let args = [
        "login",
        "--url",
        "http://127.0.0.1:9",
        "--api-key-stdin",
        "--no-verify",
    ];
    let zero = File::open("/dev/zero").unwrap();
    let out = sb.run_bounded(&args, Stdio::from(zero), None);
    assert_refused_promptly(
        &args,
        &out,
        &["standard input holds more than 4 KiB without a line break"],
    );
    assert!(!sb.config_path().exists(), "nothing was saved");
}

#[test]
fn config_status_logout_and_login_refuse_a_config_json_that_is_no_file() {
    for what in [Unreadable::Fifo, Unreadable::DevZero] {
        let sb = Sandbox::new();
        let file = sb.config_path();
        what.make(&file);
        for args in [
            &["config"][..],
            &["config", "set", "redact", "false"],
            &["status"],
            &["logout"],
            &["verify"],
            &["login", "--local", "--no-verify"],
        ] {
            refused(&sb, args, None, &file, what);
        }
        // Left where it was: it is not a file with bad contents to set aside.
        assert!(fs::symlink_metadata(&file).is_ok());
        assert!(!file.with_extension("json.corrupt").exists());
    }
}

#[test]
fn a_huge_config_json_is_refused_when_read_and_set_aside_when_rewritten() {
    let sb = Sandbox::new();
    let file = sb.config_path();
    Unreadable::Huge.make(&file);
    for args in [&["config"][..], &["status"], &["verify"]] {
        refused(&sb, args, None, &file, Unreadable::Huge);
    }
    // logout rewrites the file: moved aside whole, never read whole, never deleted.
    let out = sb.run_bounded(&["logout"], Stdio::null(), None);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.peak_kib < MEMORY_CEILING_KIB, "{} KiB", out.peak_kib);
    assert!(out.stdout.contains("is 100 MiB;"), "{}", out.stdout);
    let aside = file.with_extension("json.corrupt");
    assert_eq!(fs::metadata(aside).unwrap().len(), 100 * 1024 * 1024);
    assert!(!file.exists());
}

/// A loopback port nothing listens on.
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}
