//! The built `opencode-sync` binary against the contract server over loopback. Every
//! command's output passes through [`Sandbox::run`], which fails the test if any full API
//! key appears in stdout or stderr.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use opencode_sync_contract_server::{ServerHandle, ServerOptions};
use serde_json::Value;

#[path = "support/sandbox.rs"]
mod sandbox;

use sandbox::{KEY, OTHER_KEY, Output, Sandbox, write};

impl Sandbox {
    fn config(&self) -> Value {
        serde_json::from_str(&fs::read_to_string(self.config_path()).unwrap()).unwrap()
    }

    fn login(&self, server: &ServerHandle, key: &str) -> Output {
        self.run_with_stdin(
            &["login", "--url", &server.url(), "--api-key-stdin"],
            Some(&format!("{key}\n")),
        )
    }
}

fn server_with(keys: &[&str]) -> ServerHandle {
    ServerHandle::start(ServerOptions {
        api_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..ServerOptions::default()
    })
    .unwrap()
}

/// A loopback URL where nothing listens.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_ok_saves_normalised_credentials_privately() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    let out = sb.login(&server, KEY);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("osk_Test…0001"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("\"plugin\": [\"opencode-sync-plugin\"]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("opencode-sync verify"),
        "{}",
        out.stdout
    );
    let cfg = sb.config();
    assert_eq!(cfg["convexUrl"], server.url().trim_end_matches('/'));
    assert_eq!(cfg["apiKey"], KEY);
    #[cfg(unix)]
    {
        assert_eq!(mode(&sb.config_path()), 0o600);
        assert_eq!(mode(sb.config_path().parent().unwrap()), 0o700);
    }
}

#[test]
fn login_with_trailing_slash_and_flags() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    let url = format!("{}/", server.url());
    let out = sb.run(&["login", "--url", &url, "--api-key", KEY]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sb.config()["convexUrl"], server.url());
}

#[test]
fn login_with_a_rejected_key_saves_nothing() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    let out = sb.login(&server, OTHER_KEY);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("API key rejected by 127.0.0.1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Nothing was saved"), "{}", out.stderr);
    assert!(!sb.config_path().exists());

    // An existing good login is left untouched by a failed one.
    assert_eq!(sb.login(&server, KEY).code, 0);
    let before = fs::read(sb.config_path()).unwrap();
    assert_eq!(sb.login(&server, OTHER_KEY).code, 1);
    assert_eq!(fs::read(sb.config_path()).unwrap(), before);
}

#[test]
fn login_to_an_unreachable_server_names_the_url() {
    let sb = Sandbox::new();
    let url = dead_url();
    let out = sb.run_with_stdin(&["login", "--url", &url, "--api-key-stdin"], Some(KEY));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("could not reach {url}/health")),
        "{}",
        out.stderr
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn login_to_something_that_is_not_opensync() {
    // A server that accepts connections and answers garbage.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let responder = std::thread::spawn(move || {
        use std::io::Read;
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 2048];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
        );
    });
    let sb = Sandbox::new();
    let out = sb.run(&["login", "--url", &url, "--api-key", KEY]);
    responder.join().unwrap();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("does not look like an OpenSync server"),
        "{}",
        out.stderr
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn login_without_a_terminal_never_waits() {
    let sb = Sandbox::new();
    let out = sb.run(&["login"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("standard input is not a terminal"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--url"), "{}", out.stderr);

    let out = sb.run(&["login", "--url", "https://x.convex.cloud"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--api-key-stdin"), "{}", out.stderr);
    assert!(
        out.stderr.contains("OPENCODE_SYNC_API_KEY"),
        "{}",
        out.stderr
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn login_rejects_bad_input_before_the_network() {
    let sb = Sandbox::new();
    let out = sb.run(&["login", "--url", "http://example.com", "--api-key", KEY]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("http:// is only allowed"),
        "{}",
        out.stderr
    );
    let out = sb.run(&[
        "login",
        "--url",
        "https://x.convex.cloud",
        "--api-key",
        "sk-nope-1234567890123456",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("starts with \"osk_\""),
        "{}",
        out.stderr
    );
    let out = sb.run_with_stdin(
        &[
            "login",
            "--url",
            "https://x.convex.cloud",
            "--api-key-stdin",
        ],
        Some(""),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("standard input was empty"),
        "{}",
        out.stderr
    );
    assert!(!sb.config_path().exists());
}

#[test]
fn login_from_environment_variables() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new()
        .with_env("OPENCODE_SYNC_URL", &server.url())
        .with_env("OPENCODE_SYNC_API_KEY", KEY);
    let out = sb.run(&["login"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sb.config()["apiKey"], KEY);
}

#[test]
fn login_no_verify_saves_without_the_network() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "login",
        "--url",
        "https://my-app-1.convex.cloud/",
        "--api-key",
        KEY,
        "--no-verify",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(sb.config()["convexUrl"], "https://my-app-1.convex.site");
}

#[test]
fn login_keeps_options_and_unknown_keys() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    fs::write(
        sb.config_path(),
        r#"{"syncReasoning": true, "futureThing": {"a": [1]}}"#,
    )
    .unwrap();
    assert_eq!(sb.login(&server, KEY).code, 0);
    let cfg = sb.config();
    assert_eq!(cfg["syncReasoning"], true);
    assert_eq!(cfg["futureThing"]["a"][0], 1);
}

#[test]
fn login_over_a_corrupt_file_keeps_it_aside() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    fs::write(sb.config_path(), "{ not json").unwrap();
    let out = sb.login(&server, KEY);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is not a valid config file: not valid JSON"),
        "{}",
        out.stderr
    );
    let aside = sb.config_path().with_extension("json.corrupt");
    assert!(
        out.stderr
            .contains(&format!("it was kept as {}", aside.display())),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_to_string(aside).unwrap(), "{ not json");
    assert_eq!(sb.config()["apiKey"], KEY);
}

#[test]
fn status_healthy_then_key_revoked_then_server_down() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    assert_eq!(sb.login(&server, KEY).code, 0);

    let out = sb.run(&["status"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("reachable ("), "{}", out.stdout);
    assert!(out.stdout.contains("accepted"), "{}", out.stdout);
    assert!(out.stdout.contains("osk_Test…0001"), "{}", out.stdout);

    let out = sb.run(&["status", "--json"]);
    assert_eq!(out.code, 0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["apiKey"], "osk_Test…0001");
    assert_eq!(v["server"]["reachable"], true);
    assert!(v["server"]["latencyMs"].is_u64());
    assert_eq!(v["key"]["accepted"], true);

    server.revoke_key(KEY).unwrap();
    let out = sb.run(&["status"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("REJECTED by 127.0.0.1"),
        "{}",
        out.stdout
    );
    let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["key"]["accepted"], false);

    drop(server);
    let out = sb.run(&["status"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("UNREACHABLE"), "{}", out.stdout);
    let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["server"]["reachable"], false);
}

#[test]
fn a_key_in_the_url_field_is_never_echoed() {
    let sb = Sandbox::new();
    // `exec` fails the test if any output holds the key.
    let out = sb.run_with_stdin(&["login", "--url", KEY, "--api-key-stdin"], Some(KEY));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("looks like an API key"),
        "{}",
        out.stderr
    );
    write(
        &sb.config_path(),
        &format!(r#"{{"convexUrl": "{KEY}", "apiKey": "{KEY}"}}"#),
    );
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["config"],
        &["config", "--json"],
    ] {
        let out = sb.run(args);
        assert!(
            out.stdout.contains("looks like an API key") || args == ["config", "--json"],
            "{args:?}: {}",
            out.stdout
        );
    }
    let out = sb.with_env("OPENCODE_SYNC_URL", KEY).run(&["status"]);
    assert!(
        out.stdout.contains("URL in $OPENCODE_SYNC_URL is invalid"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_closed_stdout_ends_no_command_in_a_panic() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    assert_eq!(sb.login(&server, KEY).code, 0);
    for args in [
        &["version"][..],
        &["status"],
        &["status", "--json"],
        &["config"],
    ] {
        // The reading end is gone before the command writes: every write is EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = sb
            .command(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn status_says_when_the_plugin_is_switched_off() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    assert_eq!(sb.login(&server, KEY).code, 0);
    assert_eq!(sb.run(&["config", "set", "enabled", "false"]).code, 0);
    let out = sb.run(&["status"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("switched off") && out.stdout.contains("config set enabled true"),
        "{}",
        out.stdout
    );
    let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["enabled"], false);
    assert_eq!(
        v["key"]["accepted"], true,
        "the server side is still checked"
    );
    assert_eq!(sb.run(&["config", "set", "enabled", "true"]).code, 0);
    assert_eq!(sb.run(&["status"]).code, 0);
}

#[test]
fn status_uses_environment_overrides() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new()
        .with_env("OPENCODE_SYNC_URL", &server.url())
        .with_env("OPENCODE_SYNC_API_KEY", KEY);
    let out = sb.run(&["status", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["urlSource"], "$OPENCODE_SYNC_URL");
    assert_eq!(v["apiKeySource"], "$OPENCODE_SYNC_API_KEY");
    assert!(!sb.config_path().exists(), "status never writes");
}

#[test]
fn status_when_not_logged_in_or_file_corrupt() {
    let sb = Sandbox::new();
    let out = sb.run(&["status"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("not logged in: run `opencode-sync login`"),
        "{}",
        out.stdout
    );
    let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
    assert_eq!(v["configured"], false);

    fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    fs::write(sb.config_path(), format!("{{\"apiKey\": \"{KEY}\",")).unwrap();
    let out = sb.run(&["status"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("is not a valid config file"),
        "{}",
        out.stdout
    );
}

#[test]
fn logout_is_idempotent_and_keeps_options() {
    let server = server_with(&[KEY]);
    let sb = Sandbox::new();
    assert_eq!(sb.login(&server, KEY).code, 0);
    let out = sb.run(&["logout"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout
            .contains("Removed the URL and API key osk_Test…0001"),
        "{}",
        out.stdout
    );
    assert!(
        !sb.config_path().exists(),
        "nothing else was stored, so the file is gone"
    );
    let out = sb.run(&["logout"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("Not logged in"), "{}", out.stdout);

    assert_eq!(sb.login(&server, KEY).code, 0);
    assert_eq!(sb.run(&["config", "set", "syncReasoning", "true"]).code, 0);
    assert_eq!(sb.run(&["logout"]).code, 0);
    let cfg = sb.config();
    assert!(cfg.get("apiKey").is_none() && cfg.get("convexUrl").is_none());
    assert_eq!(cfg["syncReasoning"], true);
    assert_eq!(sb.run(&["status"]).code, 1);
}

#[test]
fn logout_sets_aside_a_config_that_is_not_text_and_succeeds() {
    let sb = Sandbox::new();
    // Latin-1 (an old editor's save): valid JSON to the eye, not UTF-8.
    let mut bytes = format!("{{\"apiKey\": \"{KEY}\", \"note\": \"caf").into_bytes();
    bytes.extend_from_slice(b"\xe9\"}");
    fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    fs::write(sb.config_path(), &bytes).unwrap();
    let out = sb.run(&["logout"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("is not UTF-8 text"), "{}", out.stdout);
    assert!(
        out.stdout.contains("it may hold your key"),
        "{}",
        out.stdout
    );
    assert!(!sb.config_path().exists(), "the credentials are gone");
    let aside = sb.config_path().with_extension("json.corrupt");
    assert_eq!(fs::read(aside).unwrap(), bytes, "kept whole");
    assert_eq!(sb.run(&["status"]).code, 1);
}

#[test]
fn a_second_logout_of_an_unreadable_config_keeps_the_first_backup() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    let aside = sb.config_path().with_extension("json.corrupt");
    let second = sb.config_path().with_extension("json.corrupt.1");
    for text in ["{ first", "{ second"] {
        fs::write(sb.config_path(), text).unwrap();
        let out = sb.run(&["logout"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        let kept = if text == "{ first" { &aside } else { &second };
        assert!(
            out.stdout
                .contains(&format!("moved it to {}", kept.display())),
            "{}",
            out.stdout
        );
    }
    assert_eq!(fs::read_to_string(&aside).unwrap(), "{ first");
    assert_eq!(fs::read_to_string(&second).unwrap(), "{ second");
}

#[cfg(unix)]
#[test]
fn a_config_others_can_read_is_warned_about_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    write(
        &sb.config_path(),
        &format!("{{\"convexUrl\": \"https://a.convex.site\", \"apiKey\": \"{KEY}\"}}\n"),
    );
    let dir = sb.config_path().parent().unwrap().to_owned();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(sb.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let fix = format!("chmod 600 {}", sb.config_path().display());
    for args in [&["status"][..], &["config"], &["verify"]] {
        let out = sb.run(args);
        let warnings: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("mode 0644, wider than 0600"))
            .collect();
        assert_eq!(warnings.len(), 1, "{args:?}: {}", out.stderr);
        assert!(warnings[0].contains(&fix), "{args:?}: {}", out.stderr);
    }
    for args in [
        &["status", "--json"][..],
        &["config", "--json"],
        &["verify", "--json"],
    ] {
        let out = sb.run(args);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        let warnings = v["warnings"].as_array().unwrap();
        assert!(
            warnings.iter().any(|w| w.as_str().unwrap().contains(&fix)),
            "{args:?}: {v}"
        );
    }
    // Private again: no warning.
    fs::set_permissions(sb.config_path(), fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!sb.run(&["config"]).stderr.contains("wider than 0600"));

    // `config set` rewrites the file 0600 and tightens the directory to 0700, saying so.
    fs::set_permissions(sb.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = sb.run(&["config", "set", "redact", "false"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mode(&sb.config_path()), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert!(
        out.stderr.contains("was mode 0755; set it to 0700"),
        "{}",
        out.stderr
    );
    // And creates it 0700 when there is none.
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(sb.run(&["config", "set", "redact", "false"]).code, 0);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&sb.config_path()), 0o600);
}

#[test]
fn a_config_json_with_a_byte_order_mark_is_read() {
    let sb = Sandbox::new();
    write(
        &sb.config_path(),
        &format!(
            "\u{feff}{{\"convexUrl\": \"https://a.convex.site\", \"apiKey\": \"{KEY}\", \"syncReasoning\": true}}\n"
        ),
    );
    let out = sb.run(&["config", "--json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["options"]["syncReasoning"], true);
    assert_eq!(v["convexUrl"], "https://a.convex.site");
    let out = sb.run(&["verify"]);
    assert!(out.stdout.contains("osk_Test…0001"), "{}", out.stdout);
    // logout keeps the options, rewritten without the mark.
    assert_eq!(sb.run(&["logout"]).code, 0);
    assert_eq!(
        fs::read_to_string(sb.config_path()).unwrap(),
        "{\n  \"syncReasoning\": true\n}\n"
    );
}

#[test]
fn a_credential_of_the_wrong_type_names_the_key_and_what_it_takes() {
    let sb = Sandbox::new();
    write(
        &sb.config_path(),
        "{\"convexUrl\": \"https://a.convex.site\", \"apiKey\": 12345}",
    );
    for args in [&["config"][..], &["status"], &["verify"]] {
        let out = sb.run(args);
        assert_eq!(out.code, 1, "{args:?}");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(
            said.contains("\"apiKey\" must be a string (the API key), not integer `12345`"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("not valid JSON"), "{args:?}: {said}");
    }
    // A bad option value is a note naming the option and what it takes, not an error.
    write(&sb.config_path(), "{\"syncReasoning\": 5}");
    let out = sb.run(&["config"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("syncReasoning takes true or false, not \"5\""),
        "{}",
        out.stderr
    );
}

#[test]
fn config_show_set_unset_and_path() {
    let sb = Sandbox::new();
    let out = sb.run(&["config", "path"]);
    assert_eq!(out.stdout.trim(), sb.config_path().display().to_string());

    assert_eq!(
        sb.run(&[
            "login",
            "--url",
            "https://a.convex.cloud",
            "--api-key",
            KEY,
            "--no-verify"
        ])
        .code,
        0
    );
    let out = sb.run(&["config", "set", "maxToolOutputBytes", "4096"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = sb.run(&["config", "set", "maxToolOutputBytes", "lots"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("whole number of bytes"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["config", "set", "apiKey", OTHER_KEY]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("use `opencode-sync login`"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["config", "set", "colour", "blue"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("known options:"), "{}", out.stderr);

    let out = sb.run(&["config"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("osk_Test…0001"), "{}", out.stdout);
    assert!(
        out.stdout.contains("maxToolOutputBytes   4096"),
        "{}",
        out.stdout
    );

    let v: Value = serde_json::from_str(&sb.run(&["config", "--json"]).stdout).unwrap();
    assert_eq!(v["options"]["maxToolOutputBytes"], 4096);
    assert_eq!(v["apiKey"], "osk_Test…0001");
    assert_eq!(v["convexUrl"], "https://a.convex.site");

    assert_eq!(sb.run(&["config", "unset", "maxToolOutputBytes"]).code, 0);
    assert!(sb.config().get("maxToolOutputBytes").is_none());
    assert_eq!(sb.config()["apiKey"], KEY);
}

fn verify_sandbox() -> (Sandbox, PathBuf) {
    let sb = Sandbox::new();
    assert_eq!(
        sb.run(&[
            "login",
            "--url",
            "https://a.convex.cloud",
            "--api-key",
            KEY,
            "--no-verify"
        ])
        .code,
        0
    );
    let project = sb.home().join("work/app");
    fs::create_dir_all(project.join(".git")).unwrap();
    // No `opencode` on PATH unless a test puts one there: the developer's does not count.
    (with_opencode(sb, None), project)
}

/// The sandbox with PATH holding only its own `bin` (and the system's basics), where
/// `opencode` is a shell script with `body` (`None`: no `opencode` at all).
fn with_opencode(sb: Sandbox, body: Option<&str>) -> Sandbox {
    let bin = sb.home().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("opencode");
    let _ = fs::remove_file(&exe);
    if let Some(body) = body {
        write(&exe, &format!("#!/bin/sh\n{body}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    sb.with_env("PATH", &path)
}

#[cfg(unix)]
#[test]
fn verify_says_which_opencode_major_loads_each_entry() {
    let (sb, project) = verify_sandbox();
    let build = sb.home().join("src/plugin/npm");
    write(
        &build.join("package.json"),
        r#"{"name": "opencode-sync-plugin", "main": "./index.js"}"#,
    );
    write(&build.join("index.js"), "export default {}\n");
    let config = project.join("opencode.json");
    write(
        &config,
        &format!(
            r#"{{"plugin": ["file://{}"]}}"#,
            build.join("index.js").display()
        ),
    );
    let fix = format!("opencode-sync setup --plugin file://{}", build.display());

    // OpenCode unknown: the 1.x-era module entry loads in 1.x only; warned, with the fix.
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("no `opencode` on PATH"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("in OpenCode 1.x only, not 2"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("OpenCode 2 does not load"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&fix), "{}", out.stderr);

    // OpenCode 2 installed: it drops the entry, so nothing loads the plugin.
    let sb = with_opencode(sb, Some("echo 2.0.26"));
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("2.0.26 (`opencode --version`"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("OpenCode 2 does not load")
            && out.stdout.contains("must be a directory"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("fix: list its directory instead: `{fix}`")),
        "{}",
        out.stdout
    );

    // OpenCode 1.18 installed: it loads it.
    let sb = with_opencode(sb, Some("echo 1.18.33"));
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Ready: OpenCode 1.18.33 will load"),
        "{}",
        out.stdout
    );

    // The directory form loads in both.
    write(
        &config,
        &format!(r#"{{"plugin": ["file://{}"]}}"#, build.display()),
    );
    let mut sb = sb;
    for version in ["1.18.33", "2.0.26"] {
        sb = with_opencode(sb, Some(&format!("echo {version}")));
        let out = sb.run_in(&project, &["verify", "--json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["ok"], true, "{version}: {v}");
        assert_eq!(v["opencode"]["version"], version);
        let entry = &v["opencodeConfigs"][0]["entries"][0];
        assert_eq!(entry["form"], "directory", "{v}");
        assert_eq!(entry["opencode1"]["loads"], true, "{v}");
        assert_eq!(entry["opencode2"]["loads"], true, "{v}");
    }
}

#[cfg(unix)]
#[test]
fn verify_asks_opencode_for_its_version_bounded() {
    let (mut sb, project) = verify_sandbox();
    write(
        &project.join("opencode.json"),
        r#"{"plugin": ["opencode-sync-plugin"]}"#,
    );
    for (body, said) in [
        // A grandchild keeps the pipe open: still bounded.
        ("sleep 30\necho 1.0.0", "did not answer within 3 s"),
        ("echo boom >&2\nexit 3", "failed"),
        ("echo hello", "printed no version"),
    ] {
        sb = with_opencode(sb, Some(body));
        let started = std::time::Instant::now();
        let out = sb.run_in(&project, &["verify"]);
        assert!(
            started.elapsed().as_secs() < 10,
            "{body}: took {:?}",
            started.elapsed()
        );
        assert_eq!(out.code, 0, "{body}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(said), "{body}: {}", out.stdout);
        assert!(!out.stderr.contains("boom"), "{}", out.stderr);
    }
}

#[test]
fn verify_global_json_string_form() {
    let (sb, project) = verify_sandbox();
    write(
        &sb.home().join(".config/opencode/opencode.json"),
        r#"{"plugin": ["opencode-sync-plugin"]}"#,
    );
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Ready"), "{}", out.stdout);
    assert!(
        out.stdout.contains("loads opencode-sync-plugin"),
        "{}",
        out.stdout
    );
}

#[test]
fn verify_project_jsonc_with_comments_and_version() {
    let (sb, project) = verify_sandbox();
    write(
        &project.join("opencode.jsonc"),
        "{\n  // sync sessions\n  \"plugin\": [\n    \"opencode-sync-plugin@1.2.3\", /* pinned */\n  ],\n}\n",
    );
    let out = sb.run_in(&project.join("."), &["verify", "--json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["pluginLoaded"], true);
    assert_eq!(v["opencodeConfigs"][0]["entries"][0]["version"], "1.2.3");
    assert_eq!(v["credentials"]["apiKey"], "osk_Test…0001");
}

#[test]
fn verify_tuple_form_from_a_subdirectory() {
    let (sb, project) = verify_sandbox();
    write(
        &project.join("opencode.json"),
        r#"{"plugin": [["opencode-sync-plugin", {"syncReasoning": true, "shade": 1}]]}"#,
    );
    let sub = project.join("src/deep");
    fs::create_dir_all(&sub).unwrap();
    let out = sb.run_in(&sub, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("with options"), "{}", out.stdout);
    assert!(
        out.stderr.contains("unknown option \"shade\""),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_lists_unknown_options_once_each_with_the_closest_known_name() {
    let (sb, project) = verify_sandbox();
    write(
        &project.join("opencode.json"),
        r#"{"plugin": [["opencode-sync-plugin", {"syncToolOutputs": false}]]}"#,
    );
    assert_eq!(sb.run(&["config", "set", "redact", "false"]).code, 0);
    let mut cfg = sb.config();
    cfg["syncReasonning"] = Value::Bool(true);
    write(&sb.config_path(), &cfg.to_string());
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for (place, typo, meant) in [
        (
            project.join("opencode.json"),
            "syncToolOutputs",
            "syncToolOutput",
        ),
        (sb.config_path(), "syncReasonning", "syncReasoning"),
    ] {
        let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains(typo)).collect();
        assert_eq!(lines.len(), 1, "{typo}: {}", out.stderr);
        assert!(
            lines[0].starts_with(&format!("warning: {}: ", place.display()))
                && lines[0].ends_with(&format!("did you mean \"{meant}\"?")),
            "{}",
            lines[0]
        );
    }
    let v: Value =
        serde_json::from_str(&sb.run_in(&project, &["verify", "--json"]).stdout).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("did you mean \\\"syncReasoning\\\"?"),
        "{warnings}"
    );
    // `config` shows them once too, as warnings with the same hint.
    let out = sb.run(&["config"]);
    assert_eq!(
        out.stderr.matches("syncReasonning").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("syncReasonning"), "{}", out.stdout);
}

#[test]
fn verify_file_url_to_a_local_build() {
    let (sb, project) = verify_sandbox();
    let build = sb.home().join("src/plugin/npm");
    write(
        &build.join("package.json"),
        r#"{"name": "opencode-sync-plugin"}"#,
    );
    write(&build.join("index.js"), "export default async () => ({})\n");
    write(
        &project.join("opencode.json"),
        &format!(
            r#"{{"plugin": ["file://{}"]}}"#,
            build.join("index.js").display()
        ),
    );
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    fs::remove_file(build.join("index.js")).unwrap();
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("which does not exist"),
        "{}",
        out.stdout
    );
}

#[test]
fn verify_reports_a_missing_plugin_with_the_fix() {
    let (sb, project) = verify_sandbox();
    write(
        &project.join("opencode.json"),
        r#"{"plugin": ["some-other-plugin"], "model": "a/b"}"#,
    );
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("OpenCode will not load the plugin"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("add { \"plugin\": [\"opencode-sync-plugin\"] }"),
        "{}",
        out.stdout
    );
    let v: Value =
        serde_json::from_str(&sb.run_in(&project, &["verify", "--json"]).stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["pluginLoaded"], false);
}

#[test]
fn verify_reports_broken_jsonc_and_missing_credentials() {
    let sb = Sandbox::new();
    let project = sb.home().join("p");
    fs::create_dir_all(project.join(".git")).unwrap();
    write(
        &project.join("opencode.json"),
        "{\"plugin\": [\"opencode-sync-plugin\"",
    );
    let out = sb.run_in(&project, &["verify"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("invalid JSONC"), "{}", out.stdout);
    assert!(out.stdout.contains("not logged in"), "{}", out.stdout);
}

#[test]
fn help_version_and_usage_errors() {
    let sb = Sandbox::new();
    let out = sb.run(&["--help"]);
    assert_eq!(out.code, 0);
    for word in [
        "login",
        "logout",
        "status",
        "config",
        "verify",
        "Examples",
        "OPENCODE_SYNC_API_KEY",
    ] {
        assert!(out.stdout.contains(word), "{word} missing from help");
    }
    let out = sb.run(&["help", "login"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("--api-key-stdin"), "{}", out.stdout);
    let version = format!("opencode-sync {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sb.run(&["--version"]).stdout.trim(), version);
    assert_eq!(sb.run(&["version"]).stdout.trim(), version);
    let out = sb.run(&["frobnicate"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unrecognized subcommand"),
        "{}",
        out.stderr
    );
    assert_eq!(sb.run(&[]).code, 2, "no command prints help and fails");
}

// ---- the outbox: `sync --flush` and `status` counts -------------------------------

mod outbox {
    use super::*;
    use opencode_sync_core::api::{MessagePayload, Role, SessionPayload};
    use opencode_sync_core::engine::Upsert;
    use opencode_sync_core::outbox::{Record, file_name, spare_name, writer_tag};

    fn outbox_dir(sb: &Sandbox) -> PathBuf {
        sb.home().join(".local/state/opencode-sync/outbox")
    }

    fn queue(sb: &Sandbox, upserts: Vec<Upsert>) {
        let dir = outbox_dir(sb);
        fs::create_dir_all(&dir).unwrap();
        for (i, u) in upserts.into_iter().enumerate() {
            let name = file_name(&u, 1_700_000_000_000 + i as i64, "testtest", i as u64);
            fs::write(dir.join(name), Record::new(&u, 1).encode()).unwrap();
        }
    }

    fn session_upsert(id: &str) -> Upsert {
        Upsert::Session(SessionPayload {
            external_id: id.into(),
            title: Some("Queued while offline".into()),
            source: Some("opencode".into()),
            created_at: Some(1_700_000_000_000),
            ..Default::default()
        })
    }

    fn message_upsert(session: &str, id: &str, text: &str) -> Upsert {
        Upsert::Message(MessagePayload {
            session_external_id: session.into(),
            external_id: id.into(),
            role: Role::User,
            text_content: Some(text.into()),
            created_at: Some(1_700_000_000_500),
            ..Default::default()
        })
    }

    fn queued_files(sb: &Sandbox) -> usize {
        fs::read_dir(outbox_dir(sb))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    }

    fn stored_sessions(server: &ServerHandle) -> Vec<Value> {
        server.dump().unwrap()["users"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|u| u["sessions"].as_array().unwrap().clone())
            .collect()
    }

    #[test]
    fn flush_delivers_everything_in_order() {
        let server = server_with(&[KEY]);
        let sb = Sandbox::new();
        assert_eq!(sb.login(&server, KEY).code, 0);
        queue(
            &sb,
            vec![
                session_upsert("ses_a"),
                message_upsert("ses_a", "msg_1", "first"),
                message_upsert("ses_a", "msg_2", "second"),
            ],
        );
        // Spare files plugins keep to rewrite: a dead plugin's are swept, a live one's
        // (this test's own pid stands for a running OpenCode) are left alone.
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        let dead_spare = spare_name(&writer_tag(1, Some(dead_pid)), 3);
        let live_spare = spare_name(&writer_tag(2, Some(std::process::id())), 4);
        for name in [&dead_spare, &live_spare] {
            fs::write(outbox_dir(&sb).join(name), "{}").unwrap();
        }
        let out = sb.run(&["status"]);
        assert!(out.stdout.contains("3 queued"), "{}", out.stdout);

        let out = sb.run(&["sync", "--flush"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("Delivered 3 queued records"),
            "{}",
            out.stdout
        );
        assert!(
            !outbox_dir(&sb).join(&dead_spare).exists(),
            "a dead plugin's spare is swept"
        );
        assert!(
            outbox_dir(&sb).join(&live_spare).exists(),
            "a running plugin's spare is kept"
        );
        fs::remove_file(outbox_dir(&sb).join(&live_spare)).unwrap();
        assert_eq!(queued_files(&sb), 0);

        let sessions = stored_sessions(&server);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["title"], "Queued while offline");
        assert_eq!(
            sessions[0]["createdAt"], 1_700_000_000_000_i64,
            "the session went before its messages"
        );
        assert_eq!(sessions[0]["messageCount"], 2);
        let texts: Vec<&str> = sessions[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["textContent"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["first", "second"]);
        let rejected = server.requests().iter().filter(|r| r.status >= 300).count();
        assert_eq!(rejected, 0);

        let out = sb.run(&["status", "--json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["outbox"]["queued"], 0);
        // Nothing left: a second flush is a no-op that succeeds.
        let out = sb.run(&["sync", "--flush"]);
        assert_eq!(out.code, 0);
        assert!(
            out.stdout.contains("Delivered 0 queued records"),
            "{}",
            out.stdout
        );
    }

    #[test]
    fn flush_while_the_server_is_down_keeps_everything() {
        let sb = Sandbox::new();
        let url = dead_url();
        assert_eq!(
            sb.run(&["login", "--url", &url, "--api-key", KEY, "--no-verify"])
                .code,
            0
        );
        queue(
            &sb,
            vec![
                session_upsert("ses_b"),
                message_upsert("ses_b", "msg_1", "x"),
            ],
        );
        let out = sb.run(&["sync", "--flush", "--timeout", "1"]);
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("2 record(s) still queued"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("connection refused"), "{}", out.stdout);
        assert_eq!(queued_files(&sb), 2);
        let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
        assert_eq!(v["outbox"]["queued"], 2);
        assert_eq!(v["outbox"]["lastError"], "connection refused");
    }

    #[test]
    fn a_hanging_server_holds_a_flush_no_longer_than_its_timeout() {
        let server = server_with(&[KEY]);
        let sb = Sandbox::new();
        assert_eq!(sb.login(&server, KEY).code, 0);
        queue(
            &sb,
            vec![
                session_upsert("ses_h"),
                message_upsert("ses_h", "msg_1", "x"),
            ],
        );
        server
            .set_faults(vec![opencode_sync_contract_server::Fault::hang()])
            .unwrap();
        let started = std::time::Instant::now();
        let out = sb.run(&["sync", "--flush", "--timeout", "2"]);
        let took = started.elapsed();
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        assert!(took.as_secs_f64() < 8.0, "a 2 s flush took {took:?}");
        assert!(
            out.stdout.contains("2 record(s) still queued"),
            "{}",
            out.stdout
        );
        assert_eq!(queued_files(&sb), 2, "nothing is lost");
    }

    #[test]
    fn ctrl_c_stops_a_flush_and_keeps_the_queue() {
        let server = server_with(&[KEY]);
        let sb = Sandbox::new();
        assert_eq!(sb.login(&server, KEY).code, 0);
        queue(
            &sb,
            vec![
                session_upsert("ses_i"),
                message_upsert("ses_i", "msg_1", "x"),
            ],
        );
        // Every answer is a 503: the flush waits between retries when Ctrl-C comes.
        server
            .set_faults(vec![opencode_sync_contract_server::Fault::status(503, 1)])
            .unwrap();
        let child = sb
            .command(&["sync", "--flush", "--timeout", "60"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let sent = std::time::Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(130), "{stdout}");
        assert!(
            sent.elapsed().as_secs_f64() < 5.0,
            "took {:?}",
            sent.elapsed()
        );
        assert!(
            stdout.contains("Interrupted: 2 record(s) still queued"),
            "{stdout}"
        );
        assert_eq!(queued_files(&sb), 2, "nothing is lost");
        // The next flush sends them.
        server.set_faults(vec![]).unwrap();
        assert_eq!(sb.run(&["sync", "--flush"]).code, 0);
        assert_eq!(queued_files(&sb), 0);
    }

    #[test]
    fn refused_and_corrupt_records_are_set_aside_not_retried() {
        let server = server_with(&[KEY]);
        let sb = Sandbox::new();
        assert_eq!(sb.login(&server, KEY).code, 0);
        let too_big = "y".repeat(1_100_000);
        queue(
            &sb,
            vec![
                session_upsert("ses_c"),
                message_upsert("ses_c", "msg_big", &too_big),
                message_upsert("ses_d", "msg_ok", "fine"),
            ],
        );
        fs::write(
            outbox_dir(&sb).join("1700000000009-testtest-000009.ses_e.message.msg_torn.json"),
            "{\"v\":1,\"queu",
        )
        .unwrap();
        let out = sb.run(&["sync", "--flush"]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("Delivered 2 queued records"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("1 record(s) refused by the server"),
            "{}",
            out.stdout
        );
        assert!(
            out.stderr.contains("skipping a corrupt outbox record"),
            "{}",
            out.stderr
        );
        let out = sb.run(&["status"]);
        assert!(
            out.stdout.contains("0 queued, 2 refused by the server"),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("String is too long"), "{}", out.stdout);
        let aside = outbox_dir(&sb).join("quarantine");
        assert!(
            out.stdout
                .contains(&format!("Set aside:   in {}", aside.display())),
            "{}",
            out.stdout
        );
        // As status says: a record moved back is queued again.
        let refused = fs::read_dir(&aside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.ends_with(".json"))
            .unwrap();
        fs::rename(aside.join(&refused), outbox_dir(&sb).join(&refused)).unwrap();
        let v: Value = serde_json::from_str(&sb.run(&["status", "--json"]).stdout).unwrap();
        assert_eq!(v["outbox"]["queued"], 1);
        assert_eq!(v["outbox"]["quarantined"], 1);
    }

    #[test]
    fn flush_with_a_revoked_key_stops_and_keeps_the_queue() {
        let server = server_with(&[KEY]);
        let sb = Sandbox::new();
        assert_eq!(sb.login(&server, KEY).code, 0);
        server.revoke_key(KEY).unwrap();
        queue(
            &sb,
            vec![session_upsert("ses_f"), message_upsert("ses_f", "m", "t")],
        );
        let sync_requests = || {
            server
                .requests()
                .iter()
                .filter(|r| r.path.starts_with("/sync/"))
                .count()
        };
        let before = sync_requests();
        let out = sb.run(&["sync", "--flush"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stdout.contains("API key rejected by 127.0.0.1"),
            "{}",
            out.stdout
        );
        assert_eq!(queued_files(&sb), 2);
        assert_eq!(sync_requests() - before, 1, "stops at the first 401");
    }

    #[test]
    fn sync_without_flush_backfills_and_says_what_is_missing() {
        let sb = Sandbox::new();
        let out = sb.run(&["sync"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stderr
                .contains("not logged in: run `opencode-sync login`"),
            "{}",
            out.stderr
        );
        let url = dead_url();
        assert_eq!(
            sb.run(&["login", "--url", &url, "--api-key", KEY, "--no-verify"])
                .code,
            0
        );
        // No OpenCode history in this home: nothing to send is no failure; it says where
        // it looked and how to point elsewhere.
        for state in ["missing", "empty"] {
            if state == "empty" {
                fs::create_dir_all(sb.home().join(".local/share/opencode/log")).unwrap();
            }
            let out = sb.run(&["sync"]);
            assert_eq!(out.code, 0, "{state}: {}{}", out.stdout, out.stderr);
            assert!(
                out.stdout.contains("No OpenCode history at")
                    && out.stdout.contains(".local/share/opencode")
                    && out.stdout.contains("nothing to send")
                    && out.stdout.contains("--data-dir"),
                "{state}: {}",
                out.stdout
            );
            let out = sb.run(&["sync", "--json"]);
            assert_eq!(out.code, 0, "{state}: {}", out.stderr);
            let report: Value = serde_json::from_str(&out.stdout).unwrap();
            assert_eq!(report["ok"], true);
            assert_eq!(report["sessions"]["sent"], 0);
            assert!(
                report["noHistoryAt"]
                    .as_str()
                    .unwrap()
                    .ends_with(".local/share/opencode")
            );
        }
        // A place the user names must hold a history.
        let missing = sb.home().join("no-such-dir");
        for out in [
            sb.run(&["sync", "--data-dir", missing.to_str().unwrap()]),
            sb.run(&["sync", "--data-dir", sb.home().to_str().unwrap()]),
        ] {
            assert_eq!(out.code, 1, "{}", out.stdout);
            assert!(out.stderr.contains("no OpenCode history"), "{}", out.stderr);
        }
    }
}
