//! What the plugin needs before it can run, gathered from the host's files and
//! environment by the core's rules: credentials (file, then environment overrides),
//! options (file, then the plugin tuple's object) and the project's git branch. The
//! plugin's host implements [`Files`] and [`Environment`]; nothing here reads a file
//! itself, so it is tested natively.

use crate::api::Endpoint;
use crate::config::{ConfigFile, CredentialsError, Options, resolve_credentials};
use crate::git::{branch_from_head, gitdir_from_dot_git_file};
use crate::paths::{Environment, config_file};
use serde_json::{Map, Value};

/// Reads a whole text file; `None` when it is missing or unreadable.
pub trait Files {
    fn read(&self, path: &str) -> Option<String>;
}

/// Everything an active plugin needs.
#[derive(Debug)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub options: Options,
    /// Things worth one log line each (ignored option values, an unreadable file).
    pub notes: Vec<String>,
}

/// Why the plugin stays inactive, as one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inactive {
    /// `"info"` when this is the user's choice, `"warn"` when something is wrong.
    pub level: &'static str,
    pub message: String,
}

/// Reads the credentials file and resolves credentials and options. `tuple` is the
/// plugin tuple's options object (it wins over the file).
pub fn load(
    files: &dyn Files,
    env: &dyn Environment,
    tuple: &Map<String, Value>,
) -> Result<Settings, Inactive> {
    let mut notes = Vec::new();
    let file = match config_file(env) {
        Ok(path) => {
            let shown = path.display().to_string();
            files.read(&shown).and_then(|text| {
                ConfigFile::from_json(&text)
                    .map_err(|e| notes.push(format!("ignored {shown}: {e}")))
                    .ok()
            })
        }
        Err(e) => {
            notes.push(e.to_string());
            None
        }
    };
    // Each note says where the option was (unknown names, bad values), logged once here.
    let (options, file_notes) = file.as_ref().map(ConfigFile::options).unwrap_or_default();
    let (options, tuple_notes) = options.merged_with(tuple);
    if let Ok(path) = config_file(env) {
        let shown = path.display().to_string();
        notes.extend(file_notes.into_iter().map(|n| format!("{shown}: {n}")));
    }
    notes.extend(
        tuple_notes
            .into_iter()
            .map(|n| format!("the plugin's options in OpenCode's config: {n}")),
    );
    if !options.enabled {
        return Err(Inactive {
            level: "info",
            message:
                "opencode-sync is disabled (option \"enabled\" is false); sessions are not synced"
                    .into(),
        });
    }
    let credentials = resolve_credentials(file.as_ref(), env).map_err(|e| Inactive {
        level: match e {
            CredentialsError::NotConfigured => "info",
            _ => "warn",
        },
        message: format!("opencode-sync is inactive, sessions are not synced: {e}"),
    })?;
    Ok(Settings {
        endpoint: Endpoint::new(credentials.url, credentials.key),
        options,
        notes,
    })
}

/// The branch checked out in `worktree`, from `.git/HEAD` (following a `.git` file's
/// `gitdir:` for worktrees and submodules).
pub fn git_branch(files: &dyn Files, worktree: &str) -> Option<String> {
    if let Some(head) = files.read(&join(worktree, ".git/HEAD")) {
        return branch_from_head(&head);
    }
    let dot_git = files.read(&join(worktree, ".git"))?;
    let gitdir = gitdir_from_dot_git_file(&dot_git)?;
    let gitdir = if is_absolute(gitdir) {
        gitdir.to_owned()
    } else {
        join(worktree, gitdir)
    };
    branch_from_head(&files.read(&join(&gitdir, "HEAD"))?)
}

/// `dir/rest`, without doubling a separator. The host's `readFile` takes `/` on every
/// platform.
fn join(dir: &str, rest: &str) -> String {
    format!("{}/{rest}", dir.trim_end_matches(['/', '\\']))
}

/// `/x`, `\\server\x` or `C:\x` (std's `Path` on wasm32 knows only the first).
fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    const KEY: &str = "osk_0123456789abcdefghijklmnopqrstuv";

    #[derive(Default)]
    struct Fake {
        files: HashMap<String, String>,
        vars: HashMap<String, String>,
        home: Option<PathBuf>,
    }

    impl Fake {
        fn new(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Self {
            Self {
                files: files
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                vars: vars
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                home: Some("/home/u".into()),
            }
        }
    }

    impl Files for Fake {
        fn read(&self, path: &str) -> Option<String> {
            self.files.get(path).cloned()
        }
    }

    impl Environment for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).filter(|v| !v.is_empty()).cloned()
        }
        fn home_dir(&self) -> Option<PathBuf> {
            self.home.clone()
        }
    }

    const CONFIG: &str = "/home/u/.config/opencode-sync/config.json";

    fn tuple(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn file_credentials_and_options_with_tuple_winning() {
        let text = format!(
            r#"{{"convexUrl":"https://n.convex.cloud","apiKey":"{KEY}","syncReasoning":true,"redact":false}}"#
        );
        let fake = Fake::new(&[(CONFIG, &text)], &[]);
        let s = load(&fake, &fake, &tuple(r#"{"redact": true}"#)).unwrap();
        assert_eq!(s.endpoint.base.as_str(), "https://n.convex.site");
        assert!(s.options.sync_reasoning, "from the file");
        assert!(s.options.redact, "the tuple wins");
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn unknown_options_are_noted_once_each_with_where_they_are() {
        let text = format!(
            r#"{{"convexUrl":"https://n.convex.cloud","apiKey":"{KEY}","syncReasonning":true}}"#
        );
        let fake = Fake::new(&[(CONFIG, &text)], &[]);
        let s = load(&fake, &fake, &tuple(r#"{"redact": true, "bogus": 1}"#)).unwrap();
        assert!(s.options.redact);
        assert!(
            !s.options.sync_reasoning,
            "a misspelt option stays unapplied"
        );
        assert_eq!(
            s.notes,
            [
                format!(
                    "{CONFIG}: ignored unknown option \"syncReasonning\": did you mean \"syncReasoning\"?"
                ),
                "the plugin's options in OpenCode's config: ignored unknown option \"bogus\"; \
                 the options are enabled, syncToolOutput, maxToolOutputBytes, syncReasoning, redact"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn xdg_and_env_overrides() {
        let fake = Fake::new(
            &[(
                "/x/opencode-sync/config.json",
                r#"{"convexUrl":"https://file.convex.site","apiKey":"osk_short"}"#,
            )],
            &[
                ("XDG_CONFIG_HOME", "/x"),
                ("OPENCODE_SYNC_API_KEY", KEY),
                ("OPENCODE_SYNC_URL", "http://127.0.0.1:4000"),
            ],
        );
        let s = load(&fake, &fake, &Map::new()).unwrap();
        assert_eq!(s.endpoint.base.as_str(), "http://127.0.0.1:4000");
        assert_eq!(s.endpoint.key.expose(), KEY);
    }

    #[test]
    fn inactive_reasons() {
        let none = Fake::new(&[], &[]);
        let e = load(&none, &none, &Map::new()).unwrap_err();
        assert_eq!(e.level, "info");
        assert!(e.message.contains("opencode-sync login"), "{}", e.message);

        let text = format!(r#"{{"convexUrl":"https://n.convex.site","apiKey":"{KEY}"}}"#);
        let fake = Fake::new(&[(CONFIG, &text)], &[]);
        let e = load(&fake, &fake, &tuple(r#"{"enabled": false}"#)).unwrap_err();
        assert!(e.message.contains("disabled"), "{}", e.message);

        let fake = Fake::new(
            &[(
                CONFIG,
                r#"{"convexUrl":"http://example.com","apiKey":"nope"}"#,
            )],
            &[],
        );
        let e = load(&fake, &fake, &Map::new()).unwrap_err();
        assert_eq!(e.level, "warn");
        assert!(!e.message.contains("nope"));

        let fake = Fake::new(&[(CONFIG, "{oops")], &[]);
        assert!(load(&fake, &fake, &Map::new()).is_err());
        let fake = Fake {
            home: None,
            ..Fake::new(
                &[],
                &[
                    ("OPENCODE_SYNC_URL", "https://e.convex.site"),
                    ("OPENCODE_SYNC_API_KEY", KEY),
                ],
            )
        };
        let s = load(&fake, &fake, &Map::new()).unwrap();
        assert_eq!(
            s.notes.len(),
            1,
            "no home is noted, the environment still works"
        );
    }

    #[test]
    fn a_broken_file_is_noted_and_the_environment_still_works() {
        let fake = Fake::new(
            &[(CONFIG, "{oops")],
            &[
                ("OPENCODE_SYNC_URL", "https://e.convex.site"),
                ("OPENCODE_SYNC_API_KEY", KEY),
            ],
        );
        let s = load(&fake, &fake, &Map::new()).unwrap();
        assert!(
            s.notes[0]
                .starts_with("ignored /home/u/.config/opencode-sync/config.json: not valid JSON"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn branches() {
        let fake = Fake::new(&[("/p/.git/HEAD", "ref: refs/heads/main\n")], &[]);
        assert_eq!(git_branch(&fake, "/p/").as_deref(), Some("main"));
        let fake = Fake::new(
            &[
                ("/w/.git", "gitdir: /p/.git/worktrees/w\n"),
                ("/p/.git/worktrees/w/HEAD", "ref: refs/heads/feature/x\n"),
                ("/s/.git", "gitdir: ../p/.git/modules/s"),
                (
                    "/s/../p/.git/modules/s/HEAD",
                    "0123456789abcdef0123456789abcdef01234567",
                ),
            ],
            &[],
        );
        assert_eq!(git_branch(&fake, "/w").as_deref(), Some("feature/x"));
        assert_eq!(git_branch(&fake, "/s").as_deref(), Some("0123456"));
        assert_eq!(git_branch(&fake, "/nowhere"), None);
        assert!(is_absolute("C:\\repo") && is_absolute("\\\\srv\\x") && !is_absolute("a/b"));
    }
}
