//! `opencode-sync setup`: the built binary in a sandbox HOME, editing OpenCode's config
//! files the way a user would have them (JSONC with comments and trailing commas, the
//! plugin already listed in each form, files missing).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "support/sandbox.rs"]
mod sandbox;

use sandbox::{Output, Sandbox, write};

impl Sandbox {
    fn global_dir(&self) -> PathBuf {
        self.home().join(".config/opencode")
    }

    /// Runs `setup ARGS` and asserts it succeeded.
    fn setup(&self, cwd: &Path, args: &[&str]) -> Output {
        let mut all = vec!["setup"];
        all.extend_from_slice(args);
        let out = self.run_in(cwd, &all);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        out
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// The `plugin` list as OpenCode would read the file.
fn plugins(path: &Path) -> Vec<Value> {
    let options = jsonc_parser::ParseOptions::default();
    let value: Value = jsonc_parser::parse_to_serde_value(&read(path), &options).unwrap();
    value["plugin"].as_array().cloned().unwrap_or_default()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const JSONC: &str = r#"{
  // My OpenCode setup.
  "$schema": "https://opencode.ai/config.json",
  "model": "anthropic/claude-sonnet-4", /* the default model */
  "plugin": [
    "some-other-plugin", // keep me
  ],
  "provider": {
    "local": { "options": { "baseURL": "http://127.0.0.1:1234/v1", }, },
  },
}
"#;

#[test]
fn adds_to_a_global_jsonc_keeping_comments_and_trailing_commas_then_is_idempotent() {
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.jsonc");
    write(&file, JSONC);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    }

    let out = sb.setup(sb.home(), &[]);
    assert!(
        out.stdout.contains("Added \"opencode-sync-plugin\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&file.display().to_string()),
        "{}",
        out.stdout
    );
    let expected = JSONC.replace(
        "    \"some-other-plugin\", // keep me\n",
        "    \"some-other-plugin\", // keep me\n    \"opencode-sync-plugin\",\n",
    );
    assert_eq!(read(&file), expected, "only the plugin line is added");
    assert!(
        !sb.global_dir().join("opencode.json").exists(),
        "the .jsonc is the one edited"
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o640, "the file keeps its permissions");
    let leftovers: Vec<_> = fs::read_dir(sb.global_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file left behind: {leftovers:?}"
    );

    // A second run changes nothing and says so.
    let out = sb.setup(sb.home(), &[]);
    assert!(
        out.stdout.contains("already loads the plugin"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert_eq!(read(&file), expected);

    // And `verify` agrees that OpenCode will load it.
    let out = sb.run(&["verify", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["pluginLoaded"], true, "{}", out.stdout);
}

#[test]
fn creates_the_global_file_when_missing_and_honours_xdg_config_home() {
    let sb = Sandbox::new();
    let xdg = sb.home().join("xdg-config");
    let sb = sb.with_env("XDG_CONFIG_HOME", xdg.to_str().unwrap());
    let out = sb.setup(sb.home(), &[]);
    let file = xdg.join("opencode/opencode.json");
    assert!(out.stdout.contains("Created"), "{}", out.stdout);
    assert_eq!(plugins(&file), vec![Value::from("opencode-sync-plugin")]);
    assert!(read(&file).ends_with("}\n"));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);
    assert!(
        !sb.global_dir().exists(),
        "~/.config is not used when XDG_CONFIG_HOME is set"
    );
    let out = sb.setup(sb.home(), &[]);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
}

#[test]
fn any_form_of_an_existing_entry_counts_as_listed() {
    fn local_build(sb: &Sandbox) -> String {
        let dir = sb.home().join("src/opencode-sync-plugin/npm");
        write(&dir.join("index.js"), "export default async () => ({})\n");
        format!("\"file://{}\"", dir.join("index.js").display())
    }
    type Entry = fn(&Sandbox) -> String;
    let cases: [(&str, Entry); 4] = [
        ("name", |_| r#""opencode-sync-plugin""#.to_owned()),
        ("version", |_| r#""opencode-sync-plugin@0.1.0""#.to_owned()),
        ("tuple", |_| {
            r#"["opencode-sync-plugin", { "syncReasoning": true, },]"#.to_owned()
        }),
        ("file", local_build),
    ];
    for (form, entry) in cases {
        let sb = Sandbox::new();
        let file = sb.global_dir().join("opencode.json");
        let text = format!(
            "{{\n  // {form}\n  \"plugin\": [\n    {},\n  ],\n}}\n",
            entry(&sb)
        );
        write(&file, &text);
        let out = sb.setup(sb.home(), &[]);
        assert!(
            out.stdout.contains("nothing to change"),
            "{form}: {}",
            out.stdout
        );
        assert_eq!(read(&file), text, "{form}: the file is untouched");
    }

    // Listed in the legacy config.json of the same directory counts too.
    let sb = Sandbox::new();
    write(
        &sb.global_dir().join("config.json"),
        r#"{"plugin": ["opencode-sync-plugin"]}"#,
    );
    let out = sb.setup(sb.home(), &[]);
    assert!(
        out.stdout.contains("config.json already loads"),
        "{}",
        out.stdout
    );
    assert!(!sb.global_dir().join("opencode.json").exists());

    // A look-alike name does not.
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.json");
    write(&file, r#"{"plugin": ["opencode-sync-plugin-extra"]}"#);
    sb.setup(sb.home(), &[]);
    assert_eq!(
        plugins(&file),
        vec![
            Value::from("opencode-sync-plugin-extra"),
            Value::from("opencode-sync-plugin")
        ]
    );
}

#[test]
fn project_setup_edits_the_repository_root_and_leaves_the_global_config_alone() {
    let sb = Sandbox::new();
    let project = sb.home().join("work/app");
    let sub = project.join("src/deep");
    fs::create_dir_all(project.join(".git")).unwrap();
    fs::create_dir_all(&sub).unwrap();
    let global = sb.global_dir().join("opencode.json");
    write(&global, "{ \"model\": \"a/b\" }\n");

    // Without DIR: the git root around the current directory.
    let out = sb.setup(&sub, &["--project"]);
    let file = project.join("opencode.json");
    assert!(out.stdout.contains("Created"), "{}", out.stdout);
    assert_eq!(plugins(&file), vec![Value::from("opencode-sync-plugin")]);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o644);
    assert_eq!(read(&global), "{ \"model\": \"a/b\" }\n");
    let out = sb.setup(&sub, &["--project"]);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);

    // With DIR, from anywhere; an existing project .jsonc is the one edited.
    let other = sb.home().join("work/other");
    let jsonc = other.join("opencode.jsonc");
    write(&jsonc, "{\n  // project settings\n  \"plugin\": [],\n}\n");
    let out = sb.setup(sb.home(), &["--project", other.to_str().unwrap()]);
    assert!(out.stdout.contains("Added"), "{}", out.stdout);
    assert_eq!(
        read(&jsonc),
        "{\n  // project settings\n  \"plugin\": [\"opencode-sync-plugin\"],\n}\n"
    );
    assert!(!other.join("opencode.json").exists());

    // The global setup still sees nothing in the global layer and adds it there.
    let out = sb.setup(&project, &[]);
    assert!(out.stdout.contains("Added"), "{}", out.stdout);
    assert_eq!(plugins(&global), vec![Value::from("opencode-sync-plugin")]);
}

#[test]
fn dry_run_shows_the_change_and_writes_nothing() {
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.jsonc");
    write(&file, JSONC);
    let out = sb.setup(sb.home(), &["--dry-run"]);
    assert!(out.stdout.contains("Would add"), "{}", out.stdout);
    assert!(
        out.stdout.contains("+     \"opencode-sync-plugin\","),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("      \"some-other-plugin\", // keep me"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("nothing was written"), "{}", out.stdout);
    assert_eq!(read(&file), JSONC);

    let sb = Sandbox::new();
    let out = sb.setup(sb.home(), &["--dry-run"]);
    assert!(out.stdout.contains("Would create"), "{}", out.stdout);
    assert!(!sb.global_dir().exists());
}

#[test]
fn a_file_it_cannot_edit_is_left_as_it_was() {
    for (text, why) in [
        ("{\n  \"plugin\": [\n", "invalid JSONC"),
        (
            "{ \"plugin\": \"opencode-sync-plugin-other\" }",
            "\"plugin\" is not a list",
        ),
        ("[]", "the top level is not a JSON object"),
    ] {
        let sb = Sandbox::new();
        let file = sb.global_dir().join("opencode.json");
        write(&file, text);
        let out = sb.run(&["setup"]);
        assert_eq!(out.code, 1, "{text}: {}", out.stdout);
        assert!(out.stderr.contains(why), "{text}: {}", out.stderr);
        assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
        assert_eq!(read(&file), text);
    }
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_is_edited_where_it_lives() {
    let sb = Sandbox::new();
    let real = sb.home().join("dotfiles/opencode.json");
    write(&real, "{\n  \"model\": \"a/b\"\n}\n");
    fs::create_dir_all(sb.global_dir()).unwrap();
    let link = sb.global_dir().join("opencode.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    sb.setup(sb.home(), &[]);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        read(&real),
        "{\n  \"model\": \"a/b\",\n  \"plugin\": [\"opencode-sync-plugin\"]\n}\n"
    );
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_is_written_through_to_the_file_it_names() {
    let sb = Sandbox::new();
    fs::create_dir_all(sb.global_dir()).unwrap();
    let link = sb.global_dir().join("opencode.json");
    let real = sb.home().join("dotfiles/opencode/opencode.json");
    std::os::unix::fs::symlink("../../dotfiles/opencode/opencode.json", &link).unwrap();
    let out = sb.setup(sb.home(), &[]);
    let shown = fs::canonicalize(sb.home())
        .unwrap()
        .join("dotfiles/opencode/opencode.json");
    assert!(
        out.stdout
            .contains(&format!("through the link to {}", shown.display())),
        "{}",
        out.stdout
    );
    assert!(
        fs::symlink_metadata(&link).unwrap().is_symlink(),
        "the link stays a link"
    );
    assert_eq!(
        plugins(&real),
        vec![Value::from("opencode-sync-plugin")],
        "the target was created"
    );
    #[cfg(unix)]
    assert_eq!(mode(&real), 0o600);
    let out = sb.setup(sb.home(), &[]);
    assert!(
        out.stdout.contains("already loads the plugin"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_byte_order_mark_is_read_past_and_kept() {
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.jsonc");
    write(&file, "\u{feff}{\n  // mine\n  \"model\": \"a/b\",\n}\n");
    sb.setup(sb.home(), &[]);
    assert_eq!(
        read(&file),
        "\u{feff}{\n  // mine\n  \"model\": \"a/b\",\n  \"plugin\": [\"opencode-sync-plugin\"],\n}\n"
    );
    let out = sb.run(&["verify", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["pluginLoaded"], true, "{}", out.stdout);
    assert_eq!(v["opencodeConfigs"][0]["error"], Value::Null);
}

#[test]
fn duplicate_plugin_keys_get_the_plugin_in_the_last_one_as_opencode_reads_it() {
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.json");
    let text = "{\n  \"plugin\": [\"opencode-sync-plugin\"],\n  \"model\": \"a/b\",\n  \"plugin\": [\"other\"]\n}\n";
    write(&file, text);
    // OpenCode reads the last key only: the plugin is not loaded, and verify says why.
    let out = sb.run(&["verify"]);
    assert_eq!(out.code, 1);
    let note = "has 2 \"plugin\" keys (lines 2 and 4); OpenCode reads only the last one (line 4)";
    assert!(out.stderr.contains(note), "{}", out.stderr);
    let out = sb.setup(sb.home(), &[]);
    assert!(out.stderr.contains(note), "{}", out.stderr);
    assert!(
        out.stderr.contains("the plugin goes into the last one"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("please report"), "{}", out.stderr);
    assert_eq!(
        read(&file),
        "{\n  \"plugin\": [\"opencode-sync-plugin\"],\n  \"model\": \"a/b\",\n  \"plugin\": [\"other\", \"opencode-sync-plugin\"]\n}\n"
    );
    assert_eq!(
        plugins(&file),
        vec![Value::from("other"), Value::from("opencode-sync-plugin")]
    );
}

/// A local build of the plugin as `scripts/build` leaves it: `npm/index.js` with the
/// package's `package.json` beside it, in a checkout whose path does not name the plugin
/// (and has a space, so its `file://` URL has a `%20`). Returns the module's path.
fn local_build(sb: &Sandbox) -> PathBuf {
    let npm = sb.home().join("my checkout/npm");
    write(&npm.join("index.js"), "export default async () => ({})\n");
    write(
        &npm.join("package.json"),
        "{\"name\": \"opencode-sync-plugin\", \"version\": \"0.1.0\"}\n",
    );
    npm.join("index.js")
}

/// `file://` URL of an absolute path, spaces escaped as a browser (or Node's
/// `pathToFileURL`) writes them.
fn file_url(path: &Path) -> String {
    format!("file://{}", path.display()).replace(' ', "%20")
}

#[test]
fn plugin_spec_lists_a_local_build_or_a_pinned_version_instead_of_the_name() {
    let sb = Sandbox::new();
    let module = local_build(&sb);
    let url = file_url(&module);
    assert!(url.contains("my%20checkout"), "{url}");

    let dir_url = file_url(module.parent().unwrap());

    // The module given is turned into its directory (both majors load that), and said so.
    let out = sb.setup(sb.home(), &["--plugin", &url, "--dry-run"]);
    assert!(
        out.stdout
            .contains(&format!("+   \"plugin\": [\"{dir_url}\"]")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "{url} is the module of a build; listing its directory"
        )),
        "{}",
        out.stdout
    );
    assert!(!sb.global_dir().exists(), "a dry run writes nothing");

    let out = sb.setup(sb.home(), &["--plugin", &url]);
    let file = sb.global_dir().join("opencode.json");
    assert!(
        out.stdout.contains(&format!("loading \"{dir_url}\"")),
        "{}",
        out.stdout
    );
    assert_eq!(
        plugins(&file),
        vec![Value::from(dir_url.as_str())],
        "the directory, escaped as given"
    );
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    // Again, as the module or the directory, spelt without the escape, with a trailing
    // slash, or through a symlink: the same build, no change.
    let text = read(&file);
    let raw = format!("file://{}", module.display());
    let slash = format!("{dir_url}/");
    #[cfg(unix)]
    let linked = {
        let link = sb.home().join("link");
        std::os::unix::fs::symlink(sb.home().join("my checkout"), &link).unwrap();
        file_url(&link.join("npm"))
    };
    #[cfg(not(unix))]
    let linked = url.clone();
    for spec in [&url, &dir_url, &raw, &slash, &linked] {
        let out = sb.setup(sb.home(), &["--plugin", spec]);
        assert!(
            out.stdout.contains("nothing to change"),
            "{spec}: {}",
            out.stdout
        );
        assert!(out.stderr.is_empty(), "{spec}: {}", out.stderr);
    }
    // Without --plugin any form will do.
    let out = sb.setup(sb.home(), &[]);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert_eq!(read(&file), text);

    // OpenCode (as verify reads it) loads that build.
    let out = sb.run(&["verify", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["pluginLoaded"], true, "{}", out.stdout);

    // A pinned version, into a commented JSONC, the rest kept.
    let sb = Sandbox::new();
    let jsonc = sb.global_dir().join("opencode.jsonc");
    write(&jsonc, JSONC);
    let out = sb.setup(sb.home(), &["--plugin", "opencode-sync-plugin@0.1.0"]);
    assert!(
        out.stdout.contains("Added \"opencode-sync-plugin@0.1.0\""),
        "{}",
        out.stdout
    );
    assert_eq!(
        read(&jsonc),
        JSONC.replace(
            "    \"some-other-plugin\", // keep me\n",
            "    \"some-other-plugin\", // keep me\n    \"opencode-sync-plugin@0.1.0\",\n",
        )
    );

    // In a project's config too.
    let sb = Sandbox::new();
    let url = file_url(local_build(&sb).parent().unwrap());
    let project = sb.home().join("app");
    fs::create_dir_all(&project).unwrap();
    sb.setup(&project, &["--project", ".", "--plugin", &url]);
    assert_eq!(
        plugins(&project.join("opencode.json")),
        vec![Value::from(url.as_str())]
    );
    assert!(!sb.global_dir().exists());
}

#[test]
fn plugin_spec_keeps_another_form_already_listed_and_says_so() {
    let sb = Sandbox::new();
    let url = file_url(local_build(&sb).parent().unwrap());
    let cases = [
        // (listed, shown as, asked for)
        (
            r#""opencode-sync-plugin""#.to_owned(),
            r#""opencode-sync-plugin""#.to_owned(),
            url.clone(),
        ),
        (
            format!(r#"["{url}", {{ "syncReasoning": true }}]"#),
            format!(r#"["{url}", {{options}}]"#),
            "opencode-sync-plugin".to_owned(),
        ),
        (
            r#""opencode-sync-plugin@0.1.0""#.to_owned(),
            r#""opencode-sync-plugin@0.1.0""#.to_owned(),
            "opencode-sync-plugin@0.2.0".to_owned(),
        ),
    ];
    for (listed, shown, asked) in cases {
        let file = sb.global_dir().join("opencode.json");
        let text = format!("{{\n  \"plugin\": [\n    {listed},\n  ],\n}}\n");
        write(&file, &text);
        let out = sb.setup(sb.home(), &["--plugin", &asked]);
        assert!(
            out.stderr
                .contains(&format!("already lists the plugin as {shown}")),
            "{listed}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("not adding \"{asked}\"")),
            "{listed}: {}",
            out.stderr
        );
        assert!(
            out.stdout.contains("replace that entry"),
            "{listed}: {}",
            out.stdout
        );
        assert_eq!(read(&file), text, "{listed}: the file is untouched");
        assert!(!out.stderr.contains("does not exist"), "{}", out.stderr);
    }

    // A listed build that is gone (a moved checkout) is kept too, and called out.
    let file = sb.global_dir().join("opencode.json");
    let text = "{\"plugin\": [\"file:///gone/opencode-sync-plugin/npm/index.js\"]}\n";
    write(&file, text);
    let out = sb.setup(sb.home(), &["--plugin", &url]);
    assert!(
        out.stderr
            .contains("The listed file does not exist any more, so OpenCode cannot load it."),
        "{}",
        out.stderr
    );
    assert_eq!(read(&file), text);
}

#[test]
fn a_bad_plugin_spec_is_refused_with_what_is_accepted() {
    let sb = Sandbox::new();
    let stranger = sb.home().join("elsewhere/index.js");
    write(&stranger, "export default async () => ({})\n");
    let stranger_url = file_url(&stranger);
    // A checkout that was never built: its npm/ has the package.json but no index.js.
    let unbuilt = sb.home().join("fresh checkout/npm");
    write(
        &unbuilt.join("package.json"),
        "{\"name\": \"opencode-sync-plugin\"}\n",
    );
    let unbuilt_url = file_url(&unbuilt);
    let cases = [
        ("", "empty".to_owned()),
        ("some-other-plugin", "not this plugin".to_owned()),
        ("opencode-sync-plugin-extra", "not this plugin".to_owned()),
        ("opencode-sync-plugin@", "is not a version".to_owned()),
        ("opencode-sync-plugin@1 2", "is not a version".to_owned()),
        ("./npm/index.js", "looks like a path".to_owned()),
        ("/abs/index.js", "file:///abs/index.js".to_owned()),
        ("file://npm/index.js", "needs an absolute path".to_owned()),
        (
            "https://example.invalid/p.tgz",
            "only an npm name or a file:// URL".to_owned(),
        ),
        (
            "npm:opencode-sync-plugin",
            "only an npm name or a file:// URL".to_owned(),
        ),
        (
            "file:///nonexistent/npm/index.js",
            "there is no /nonexistent/npm/index.js".to_owned(),
        ),
        (
            stranger_url.as_str(),
            format!(
                "{} is not a build of opencode-sync-plugin",
                stranger.parent().unwrap().display()
            ),
        ),
        (
            unbuilt_url.as_str(),
            format!("{} has no index.js", unbuilt.display()),
        ),
    ];
    for (spec, why) in cases {
        let out = sb.run(&["setup", "--plugin", spec]);
        assert_eq!(out.code, 2, "{spec}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(&why), "{spec}: {}", out.stderr);
        assert!(out.stderr.contains("--plugin"), "{spec}: {}", out.stderr);
        assert!(!sb.global_dir().exists(), "{spec}: nothing written");
    }
}

/// The sandbox with an `opencode` on PATH that prints `version` for `--version` (`None`:
/// no `opencode` on PATH at all), so `verify` judges the entries for that major.
fn with_opencode(sb: Sandbox, version: Option<&str>) -> Sandbox {
    let bin = sb.home().join("bin");
    fs::create_dir_all(&bin).unwrap();
    if let Some(version) = version {
        let exe = bin.join("opencode");
        write(&exe, &format!("#!/bin/sh\necho '{version}'\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    sb.with_env("PATH", &path)
}

/// `verify --json` with OpenCode `version` installed: (ok, the JSON).
fn verify_with(sb: Sandbox, version: Option<&str>) -> (Sandbox, Value) {
    let sb = with_opencode(sb, version);
    let out = sb.run(&["verify", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    (sb, v)
}

const V2_JSONC: &str = r#"{
  // OpenCode 2: plugins by package, with options.
  "$schema": "https://opencode.ai/config.json",
  "plugins": [
    { "package": "opencode-notifier", "options": { "sound": true, }, }, // pinned
    "-legacy.*",
    /* local */ "./plugins/mine",
  ],
  "model": "anthropic/claude-sonnet-4",
}
"#;

#[test]
fn a_v2_config_gets_the_entry_in_plugins_keeping_objects_and_comments() {
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.jsonc");
    write(&file, V2_JSONC);
    let out = sb.setup(sb.home(), &[]);
    assert!(
        out.stdout.contains("Added \"opencode-sync-plugin\""),
        "{}",
        out.stdout
    );
    let expected = V2_JSONC.replace(
        "    /* local */ \"./plugins/mine\",\n",
        "    /* local */ \"./plugins/mine\",\n    \"opencode-sync-plugin\",\n",
    );
    assert_eq!(read(&file), expected, "one line added to \"plugins\"");
    let again = sb.setup(sb.home(), &[]);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
    assert!(again.stderr.is_empty(), "{}", again.stderr);
    assert_eq!(read(&file), expected);

    // OpenCode 2 loads it; OpenCode 1.x would not (it reads only "plugin"), and says so.
    sb.run(&[
        "login",
        "--url",
        "https://a.convex.cloud",
        "--api-key",
        sandbox::KEY,
        "--no-verify",
    ]);
    let (sb, v) = verify_with(sb, Some("2.0.26"));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["pluginLoaded"], true, "{v}");
    assert_eq!(v["opencode"]["major"], 2, "{v}");
    let entry = &v["opencodeConfigs"][0]["entries"][0];
    assert_eq!(entry["key"], "plugins", "{v}");
    assert_eq!(entry["opencode2"]["loads"], true, "{v}");
    assert_eq!(entry["opencode1"]["loads"], false, "{v}");
    let (_, v) = verify_with(sb, Some("1.18.33"));
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["problems"][0]["what"]
            .as_str()
            .unwrap()
            .contains("reads only the \"plugin\" key"),
        "{v}"
    );

    // With both keys, "plugins" gets it (OpenCode 2 merges both; 1.x would read neither
    // entry twice): never two entries.
    let sb = Sandbox::new();
    let file = sb.global_dir().join("opencode.json");
    write(&file, "{\"plugin\": [\"a\"], \"plugins\": []}\n");
    sb.setup(sb.home(), &[]);
    assert_eq!(
        read(&file),
        "{\"plugin\": [\"a\"], \"plugins\": [\"opencode-sync-plugin\"]}\n"
    );
}

#[test]
fn any_v2_form_of_an_existing_entry_counts_as_listed() {
    let sb = Sandbox::new();
    let dir = local_build(&sb).parent().unwrap().to_path_buf();
    let cases = [
        r#""plugins": [{ "package": "opencode-sync-plugin@0.1.0", "options": { "syncReasoning": true } }]"#.to_owned(),
        r#""plugins": [{ "package": "opencode-sync-plugin" }]"#.to_owned(),
        format!(r#""plugins": ["{}"]"#, file_url(&dir)),
        format!(r#""plugins": ["{}"]"#, dir.display()),
        r#""plugins": ["./vendor/opencode-sync-plugin/npm"]"#.to_owned(),
        r#""plugin": [{ "package": "opencode-sync-plugin" }]"#.to_owned(),
    ];
    for listed in cases {
        let file = sb.global_dir().join("opencode.jsonc");
        let text = format!("{{\n  // V2\n  {listed},\n}}\n");
        write(&file, &text);
        let out = sb.setup(sb.home(), &[]);
        assert!(
            out.stdout.contains("nothing to change"),
            "{listed}: {}",
            out.stdout
        );
        assert_eq!(read(&file), text, "{listed}: the file is untouched");
    }
}

#[test]
fn a_build_listed_by_its_module_is_pointed_at_its_directory_in_place() {
    let sb = Sandbox::new();
    let module = local_build(&sb);
    let dir_url = file_url(module.parent().unwrap());
    let file = sb.global_dir().join("opencode.jsonc");
    let text = format!(
        "{{\n  \"plugin\": [\n    // mine\n    [\"{}\", {{ \"syncReasoning\": true }}],\n    \"other\",\n  ],\n}}\n",
        file_url(&module)
    );
    write(&file, &text);
    let out = sb.setup(sb.home(), &["--plugin", &dir_url]);
    assert!(out.stdout.contains("Pointed ["), "{}", out.stdout);
    assert!(
        out.stdout.contains("OpenCode 2 loads only directories"),
        "{}",
        out.stdout
    );
    assert_eq!(
        read(&file),
        format!(
            "{{\n  \"plugin\": [\n    // mine\n    [\"{dir_url}\", {{ \"syncReasoning\": true }}],\n    \"other\",\n  ],\n}}\n"
        ),
        "the spec changes, its options and the rest stay"
    );
    sb.run(&[
        "login",
        "--url",
        "https://a.convex.cloud",
        "--api-key",
        sandbox::KEY,
        "--no-verify",
    ]);
    let (sb, v) = verify_with(sb, Some("2.0.26"));
    assert_eq!(v["ok"], true, "{v}");
    let (_, v) = verify_with(sb, Some("opencode 1.18.33"));
    assert_eq!(v["ok"], true, "{v}");

    // Listed by its module, a plain `setup` keeps it and says OpenCode 2 drops it.
    let sb = Sandbox::new();
    let module = local_build(&sb);
    let file = sb.global_dir().join("opencode.json");
    write(
        &file,
        &format!("{{\"plugin\": [\"{}\"]}}", file_url(&module)),
    );
    let out = sb.setup(sb.home(), &[]);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert!(
        out.stderr.contains("OpenCode 2 does not load"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "setup --plugin {}",
            file_url(module.parent().unwrap())
        )),
        "{}",
        out.stderr
    );

    // An object in "plugins" too.
    let sb = Sandbox::new();
    let module = local_build(&sb);
    let file = sb.global_dir().join("opencode.json");
    write(
        &file,
        &format!(
            "{{\"plugins\": [{{\"package\": \"{}\", \"options\": {{}}}}]}}",
            file_url(&module)
        ),
    );
    sb.setup(sb.home(), &["--plugin", &file_url(&module)]);
    assert_eq!(
        read(&file),
        format!(
            "{{\"plugins\": [{{\"package\": \"{}\", \"options\": {{}}}}]}}",
            file_url(module.parent().unwrap())
        )
    );
}
