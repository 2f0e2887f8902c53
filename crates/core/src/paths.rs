//! Where opencode-sync keeps its files, resolved the way OpenCode resolves its own
//! (XDG base directories on every platform, `~/.config` and friends by default), from an
//! environment snapshot the caller provides.

use std::path::PathBuf;

/// Environment variables that override the stored credentials (for CI and scripts).
pub const ENV_URL: &str = "OPENCODE_SYNC_URL";
/// See [`ENV_URL`].
pub const ENV_API_KEY: &str = "OPENCODE_SYNC_API_KEY";

/// The directory name used under each XDG base directory.
pub const APP_DIR: &str = "opencode-sync";
/// The credentials file name inside the config directory.
pub const CONFIG_FILE: &str = "config.json";

/// A read-only view of the process environment.
pub trait Environment {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
    /// The user's home directory.
    fn home_dir(&self) -> Option<PathBuf>;
}

/// Why a path could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Neither the XDG variable nor a home directory is known.
    #[error("cannot find the home directory: set HOME or {0}")]
    NoHome(&'static str),
}

fn base_dir(
    env: &dyn Environment,
    xdg_var: &'static str,
    default_under_home: &[&str],
) -> Result<PathBuf, PathError> {
    // The XDG spec says relative values are invalid and must be ignored. (`has_root`
    // as well as `is_absolute`: on wasm32-unknown-unknown nothing is "absolute".)
    if let Some(dir) = env.var(xdg_var).map(PathBuf::from)
        && (dir.is_absolute() || dir.has_root())
    {
        return Ok(dir);
    }
    let mut dir = env.home_dir().ok_or(PathError::NoHome(xdg_var))?;
    dir.extend(default_under_home);
    Ok(dir)
}

/// `$XDG_CONFIG_HOME/opencode-sync` (default `~/.config/opencode-sync`).
pub fn config_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(base_dir(env, "XDG_CONFIG_HOME", &[".config"])?.join(APP_DIR))
}

/// `$XDG_CONFIG_HOME/opencode-sync/config.json`.
pub fn config_file(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(config_dir(env)?.join(CONFIG_FILE))
}

/// `$XDG_STATE_HOME/opencode-sync` (default `~/.local/state/opencode-sync`).
pub fn state_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(base_dir(env, "XDG_STATE_HOME", &[".local", "state"])?.join(APP_DIR))
}

/// `$XDG_DATA_HOME/opencode-sync` (default `~/.local/share/opencode-sync`): where
/// `opencode-sync serve` keeps its database and its API key.
pub fn data_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(base_dir(env, "XDG_DATA_HOME", &[".local", "share"])?.join(APP_DIR))
}

/// Name of the outbox directory under the state directory (`outbox::DIR`). Kept here so
/// that `paths` needs nothing above it.
pub const OUTBOX_DIR_NAME: &str = "outbox";

/// The durable outbox: `$XDG_STATE_HOME/opencode-sync/outbox`.
pub fn outbox_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(state_dir(env)?.join(OUTBOX_DIR_NAME))
}

/// OpenCode's own config directory: `$XDG_CONFIG_HOME/opencode`.
pub fn opencode_config_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(base_dir(env, "XDG_CONFIG_HOME", &[".config"])?.join("opencode"))
}

/// OpenCode's data directory (holding `opencode.db`): `$XDG_DATA_HOME/opencode`.
pub fn opencode_data_dir(env: &dyn Environment) -> Result<PathBuf, PathError> {
    Ok(base_dir(env, "XDG_DATA_HOME", &[".local", "share"])?.join("opencode"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment made of a map, for tests.
    #[derive(Debug, Default)]
    pub(crate) struct MapEnv {
        pub vars: HashMap<String, String>,
        pub home: Option<PathBuf>,
    }

    impl MapEnv {
        pub(crate) fn new(home: &str, vars: &[(&str, &str)]) -> Self {
            Self {
                vars: vars
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                home: Some(PathBuf::from(home)),
            }
        }
    }

    impl Environment for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).filter(|v| !v.is_empty()).cloned()
        }
        fn home_dir(&self) -> Option<PathBuf> {
            self.home.clone()
        }
    }

    #[test]
    fn defaults_under_home() {
        let env = MapEnv::new("/home/u", &[]);
        assert_eq!(
            config_file(&env).unwrap(),
            PathBuf::from("/home/u/.config/opencode-sync/config.json")
        );
        assert_eq!(
            state_dir(&env).unwrap(),
            PathBuf::from("/home/u/.local/state/opencode-sync")
        );
        assert_eq!(
            opencode_data_dir(&env).unwrap(),
            PathBuf::from("/home/u/.local/share/opencode")
        );
        assert_eq!(
            data_dir(&env).unwrap(),
            PathBuf::from("/home/u/.local/share/opencode-sync")
        );
        assert_eq!(
            opencode_config_dir(&env).unwrap(),
            PathBuf::from("/home/u/.config/opencode")
        );
    }

    #[test]
    fn xdg_wins_when_absolute_and_is_ignored_when_relative() {
        let env = MapEnv::new("/home/u", &[("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            config_file(&env).unwrap(),
            PathBuf::from("/cfg/opencode-sync/config.json")
        );
        let env = MapEnv::new("/home/u", &[("XDG_CONFIG_HOME", "rel/cfg")]);
        assert_eq!(
            config_file(&env).unwrap(),
            PathBuf::from("/home/u/.config/opencode-sync/config.json")
        );
    }

    #[test]
    fn no_home_is_a_clear_error() {
        let env = MapEnv::default();
        assert_eq!(
            config_file(&env).unwrap_err().to_string(),
            "cannot find the home directory: set HOME or XDG_CONFIG_HOME"
        );
    }
}
