//! Locations of the config and credentials files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{load, Error, ProfileSet};

/// Paths of the shared config file and the shared credentials file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    pub config: PathBuf,
    pub credentials: PathBuf,
}

impl Sources {
    /// Resolves both paths from the process environment, as [`Sources::from_vars`] describes.
    pub fn from_env() -> Result<Sources, Error> {
        Sources::from_vars(|name| std::env::var_os(name))
    }

    /// Resolves both paths from environment variables read through `var`.
    ///
    /// `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` override the defaults
    /// `~/.aws/config` and `~/.aws/credentials`. A leading `~` followed by a path separator
    /// (or a bare `~`) expands to the home directory, taken from `HOME`, else `USERPROFILE`,
    /// else `HOMEDRIVE` joined with `HOMEPATH`. Empty variables count as unset.
    ///
    /// Returns [`Error::HomeNotFound`] only when a path needs the home directory and none of
    /// those variables is set.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Result<Sources, Error> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        let home = || -> Result<PathBuf, Error> {
            if let Some(home) = var("HOME").or_else(|| var("USERPROFILE")) {
                return Ok(PathBuf::from(home));
            }
            match (var("HOMEDRIVE"), var("HOMEPATH")) {
                (Some(drive), Some(path)) => {
                    let mut joined = drive;
                    joined.push(path);
                    Ok(PathBuf::from(joined))
                }
                _ => Err(Error::HomeNotFound),
            }
        };
        let resolve = |variable: &str, default: &str| -> Result<PathBuf, Error> {
            let raw = var(variable).unwrap_or_else(|| OsString::from(default));
            expand_home(Path::new(&raw), &home)
        };
        Ok(Sources {
            config: resolve("AWS_CONFIG_FILE", "~/.aws/config")?,
            credentials: resolve("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")?,
        })
    }

    /// Reads and merges both files, as [`load`] does.
    pub fn load(&self) -> Result<ProfileSet, Error> {
        load(&self.config, &self.credentials)
    }
}

fn expand_home(path: &Path, home: &impl Fn() -> Result<PathBuf, Error>) -> Result<PathBuf, Error> {
    // `Path::strip_prefix` compares whole components, so `~user/x` is not expanded.
    match path.strip_prefix("~") {
        Ok(rest) if rest.as_os_str().is_empty() => home(),
        Ok(rest) => Ok(home()?.join(rest)),
        Err(_) => Ok(path.to_path_buf()),
    }
}
