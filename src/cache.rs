//! The on-disk cache of short-term credentials in `~/.awsu/sessions/`.
//!
//! Each layer of a chain (the session token, each role) is one JSON file named
//! after a key derived from everything that determines its credentials. The
//! JSON fields are those of the original Go awsu (`AccessKeyID`, `Expires`, ...).
//! Entries are written to a temporary file in the same directory and renamed,
//! so a reader never sees a torn file. A lock file beside each entry
//! serialises the processes that would fill it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::credentials::{format_rfc3339, unix_seconds, Credentials, Secret};
use crate::error::Error;

/// Version of the entry format; entries of another version are misses.
const ENTRY_VERSION: u32 = 1;

/// How long a waiting process stays silent before saying what it waits for.
const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Default bound on waiting for another awsu; `AWSU_LOCK_TIMEOUT` changes it.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// A cache key: the hex SHA-256 of the inputs that determine a layer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// Derives a key from named parts. Each part is length-prefixed, so that
    /// no two different inputs hash the same text.
    pub fn derive(parts: &[(&str, &str)]) -> CacheKey {
        let mut hasher = Sha256::new();
        for (name, value) in parts {
            for field in [name, value] {
                hasher.update((field.len() as u64).to_be_bytes());
                hasher.update(field.as_bytes());
            }
        }
        CacheKey(hex::encode(hasher.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A cached layer in the original awsu's JSON shape, plus a kind and version.
#[derive(Serialize, Deserialize)]
struct Entry {
    #[serde(rename = "AccessKeyID")]
    access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    secret_access_key: Secret,
    #[serde(rename = "SessionToken")]
    session_token: Secret,
    #[serde(rename = "Expires")]
    expires: String,
    #[serde(rename = "Profile")]
    profile: String,
    #[serde(rename = "Kind")]
    kind: String,
    #[serde(rename = "Version")]
    version: u32,
}

/// The cache directory, or a disabled cache for `--no-cache`.
pub struct Cache {
    dir: Option<PathBuf>,
    lock_timeout: Duration,
}

impl Cache {
    /// Opens the cache in `dir`; nothing is created until the first write or
    /// lock. Fails on an invalid `AWSU_LOCK_TIMEOUT`.
    pub fn new(dir: PathBuf) -> Result<Cache, Error> {
        Ok(Cache {
            dir: Some(dir),
            lock_timeout: lock_timeout_from_env()?,
        })
    }

    /// Returns a cache that neither reads nor writes.
    pub fn disabled() -> Cache {
        Cache {
            dir: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Returns the default directory, `~/.awsu/sessions`.
    pub fn default_dir() -> Result<PathBuf, Error> {
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .ok_or_else(|| Error::Other("HOME is not set: set it, or use --no-cache".into()))?;
        Ok(Path::new(&home).join(".awsu").join("sessions"))
    }

    /// Creates the directory with mode 0700 (whatever the umask) and checks
    /// that it belongs to the current user and is private.
    fn ensure_dir(&self) -> Result<Option<&Path>, Error> {
        let Some(dir) = self.dir.as_deref() else {
            return Ok(None);
        };

        match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => {}
            Err(source) => {
                return Err(Error::Cache {
                    path: dir.to_owned(),
                    message: format!("could not create the directory: {source}"),
                })
            }
        }

        let metadata = fs::symlink_metadata(dir).map_err(|source| Error::Cache {
            path: dir.to_owned(),
            message: format!("could not read the directory: {source}"),
        })?;
        if !metadata.is_dir() {
            return Err(Error::Cache {
                path: dir.to_owned(),
                message: "is not a directory (a symbolic link is not accepted): remove it".into(),
            });
        }
        if metadata.uid() != current_uid() {
            return Err(Error::Cache {
                path: dir.to_owned(),
                message: format!(
                    "the directory belongs to user id {}, not to you: remove it, or use --no-cache",
                    metadata.uid()
                ),
            });
        }
        if metadata.mode() & 0o077 != 0 {
            tracing::info!("making {} private (mode 0700)", dir.display());
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
                Error::Cache {
                    path: dir.to_owned(),
                    message: format!("could not make the directory private: {source}"),
                }
            })?;
        }
        Ok(Some(dir))
    }

    /// Takes the cross-process lock for `key`, waiting for another awsu that
    /// holds it. `task` names the work in the waiting notice. The kernel
    /// releases the lock if the holder dies.
    pub fn lock(&self, key: &CacheKey, task: &str) -> Result<Option<LockGuard>, Error> {
        let Some((path, file)) = self.open_lock_file(key)? else {
            return Ok(None);
        };
        if try_exclusive(&path, &file)? {
            return Ok(Some(LockGuard { _file: file }));
        }
        let file = self.wait(&path, file, task, File::lock)?;
        tracing::debug!("locked {}", path.display());
        Ok(Some(LockGuard { _file: file }))
    }

    /// Decides who fills the entry for `key`: this process, if the lock is
    /// free, or else the awsu holding it, which this one waits for.
    ///
    /// The wait takes a shared lock, which every waiter gets at once when the
    /// holder lets go, so that many waiters reread the entry side by side
    /// rather than taking turns with the exclusive lock.
    pub fn lock_to_fill(&self, key: &CacheKey, task: &str) -> Result<Turn, Error> {
        let Some((path, file)) = self.open_lock_file(key)? else {
            return Ok(Turn::Fill(None));
        };
        if try_exclusive(&path, &file)? {
            return Ok(Turn::Fill(Some(LockGuard { _file: file })));
        }
        self.wait(&path, file, task, File::lock_shared)?;
        tracing::debug!("another awsu let go of {}", path.display());
        Ok(Turn::Reread)
    }

    /// Opens the lock file beside the entry for `key`, or returns `None` for
    /// a disabled cache.
    fn open_lock_file(&self, key: &CacheKey) -> Result<Option<(PathBuf, File)>, Error> {
        let Some(dir) = self.ensure_dir()? else {
            return Ok(None);
        };
        let path = dir.join(format!("{}.lock", key.as_str()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| Error::Cache {
                path: path.clone(),
                message: format!("could not open the lock file: {source}"),
            })?;
        Ok(Some((path, file)))
    }

    /// Blocks in `lock` (exclusive or shared) until the holder lets go, which
    /// wakes the call at once. The call runs on a thread of its own, so that
    /// this one can print why it waits and give up after the timeout. A thread
    /// left blocked after a timeout ends when the process exits.
    fn wait(
        &self,
        path: &Path,
        file: File,
        task: &str,
        lock: fn(&File) -> std::io::Result<()>,
    ) -> Result<File, Error> {
        let started = Instant::now();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let result = lock(&file).map(|()| file);
            let _ = sender.send(result);
        });

        let mut noticed = false;
        loop {
            let wait = if noticed {
                self.lock_timeout.saturating_sub(started.elapsed())
            } else {
                LOCK_NOTICE_AFTER.min(self.lock_timeout)
            };
            match receiver.recv_timeout(wait) {
                Ok(Ok(file)) => return Ok(file),
                Ok(Err(source)) => {
                    return Err(Error::Cache {
                        path: path.to_owned(),
                        message: format!("could not lock: {source}"),
                    })
                }
                Err(_) if started.elapsed() >= self.lock_timeout => {
                    return Err(Error::Other(format!(
                        "timed out after {} waiting for another awsu to finish {task}: \
                         finish or stop that awsu (it may be waiting at a prompt), then try again",
                        crate::duration::format(self.lock_timeout)
                    )));
                }
                Err(_) => {
                    crate::terminal::notice(&format!(
                        "awsu: waiting for another awsu to finish {task}"
                    ));
                    noticed = true;
                }
            }
        }
    }

    /// Reads the entry for `key` if it is valid for at least `grace`. Anything
    /// unusable is a miss, noted in verbose output.
    pub fn read(&self, key: &CacheKey, grace: Duration) -> Option<Credentials> {
        self.read_logging(key, grace, true)
    }

    /// Reads the entry again after the lock was taken, because its holder may
    /// have filled it. Only a hit is logged, since the miss was logged before.
    pub fn read_quietly(&self, key: &CacheKey, grace: Duration) -> Option<Credentials> {
        self.read_logging(key, grace, false)
    }

    fn read_logging(&self, key: &CacheKey, grace: Duration, log_miss: bool) -> Option<Credentials> {
        let dir = self.dir.as_deref()?;
        let path = dir.join(format!("{}.json", key.as_str()));

        let credentials = match read_entry(&path) {
            Ok(Some(credentials)) => credentials,
            Ok(None) => {
                if log_miss {
                    tracing::info!("cache miss: no entry {}", path.display());
                }
                return None;
            }
            Err(reason) => {
                if log_miss {
                    tracing::info!("cache miss: ignoring {}: {reason}", path.display());
                }
                return None;
            }
        };

        let expiration = credentials.expiration_rfc3339().unwrap_or_default();
        if credentials.valid_for(grace, SystemTime::now()) {
            tracing::info!("cache hit: {} valid until {expiration}", path.display());
            Some(credentials)
        } else {
            if log_miss {
                tracing::info!(
                    "cache miss: {} expires at {expiration}, within the grace period of {}",
                    path.display(),
                    crate::duration::format(grace)
                );
            }
            None
        }
    }

    /// Writes the entry for `key` atomically, with mode 0600.
    pub fn write(
        &self,
        key: &CacheKey,
        profile: &str,
        kind: &str,
        credentials: &Credentials,
    ) -> Result<(), Error> {
        let Some(dir) = self.ensure_dir()? else {
            return Ok(());
        };
        let (Some(session_token), Some(expiration)) =
            (credentials.session_token.as_ref(), credentials.expiration)
        else {
            return Ok(());
        };

        let entry = Entry {
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret_access_key.clone(),
            session_token: session_token.clone(),
            expires: format_rfc3339(expiration),
            profile: profile.to_owned(),
            kind: kind.to_owned(),
            version: ENTRY_VERSION,
        };
        let json = serde_json::to_vec_pretty(&entry)
            .map_err(|error| Error::Other(format!("could not encode a cache entry: {error}")))?;

        let path = dir.join(format!("{}.json", key.as_str()));
        write_atomically(dir, &path, &json).map_err(|source| Error::Cache {
            path: path.clone(),
            message: format!("could not write: {source}"),
        })?;
        tracing::info!(
            "cached {kind} for profile '{profile}' in {} until {}",
            path.display(),
            entry.expires
        );
        Ok(())
    }
}

/// Reads `AWSU_LOCK_TIMEOUT`, the bound on waiting for another awsu.
fn lock_timeout_from_env() -> Result<Duration, Error> {
    let Some(text) = std::env::var("AWSU_LOCK_TIMEOUT")
        .ok()
        .filter(|text| !text.is_empty())
    else {
        return Ok(DEFAULT_LOCK_TIMEOUT);
    };
    crate::duration::parse(&text)
        .map_err(|message| Error::InvalidDuration(format!("AWSU_LOCK_TIMEOUT: {message}")))
}

/// Holds a cache lock until dropped.
pub struct LockGuard {
    _file: File,
}

/// The outcome of [`Cache::lock_to_fill`].
pub enum Turn {
    /// This process fills the entry, holding the lock (none for a disabled
    /// cache) until the guard is dropped.
    Fill(Option<LockGuard>),
    /// Another awsu held the lock and has let it go: read the entry again.
    Reread,
}

/// Takes the lock at once if it is free, and returns whether it did.
fn try_exclusive(path: &Path, file: &File) -> Result<bool, Error> {
    match file.try_lock() {
        Ok(()) => {
            tracing::debug!("locked {}", path.display());
            Ok(true)
        }
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(source)) => Err(Error::Cache {
            path: path.to_owned(),
            message: format!("could not lock: {source}"),
        }),
    }
}

/// Reads and checks one entry. `Ok(None)` is a plain miss, and `Err` explains why an
/// existing file was not trusted.
fn read_entry(path: &Path) -> Result<Option<Credentials>, String> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symbolic link, which is never followed".into())
        }
        Err(error) => return Err(format!("could not open it: {error}")),
    };

    let metadata = file.metadata().map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".into());
    }
    if metadata.uid() != current_uid() {
        return Err(format!(
            "it belongs to user id {}, not to you",
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(format!(
            "its mode {:o} lets other users read or change it",
            metadata.mode() & 0o777
        ));
    }

    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|error| format!("could not read it: {error}"))?;
    let entry: Entry =
        serde_json::from_str(&text).map_err(|error| format!("invalid JSON: {error}"))?;
    if entry.version != ENTRY_VERSION {
        return Err(format!(
            "entry version {} is not {ENTRY_VERSION}",
            entry.version
        ));
    }
    let expires = DateTime::from_str(&entry.expires, Format::DateTime)
        .map_err(|error| format!("invalid Expires '{}': {error}", entry.expires))?;

    Ok(Some(Credentials {
        access_key_id: entry.access_key_id,
        secret_access_key: entry.secret_access_key,
        session_token: Some(entry.session_token),
        expiration: Some(expires.secs()),
    }))
}

fn write_atomically(dir: &Path, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("entry"),
        std::process::id(),
        unix_seconds(SystemTime::now())
    ));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();

    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn current_uid() -> u32 {
    // SAFETY: geteuid takes no arguments and is documented never to fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(expiration: i64) -> Credentials {
        Credentials {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("example-session-token")),
            expiration: Some(expiration),
        }
    }

    fn in_an_hour() -> i64 {
        unix_seconds(SystemTime::now()) + 3600
    }

    #[test]
    fn key_separates_parts() {
        let joined = CacheKey::derive(&[("a", "bc")]);
        let split = CacheKey::derive(&[("ab", "c")]);
        assert_ne!(joined, split);
        assert_eq!(joined, CacheKey::derive(&[("a", "bc")]));
        assert_eq!(joined.as_str().len(), 64);
    }

    #[test]
    fn write_then_read_round_trips() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::new(home.path().join("sessions")).unwrap();
        let key = CacheKey::derive(&[("test", "round trip")]);
        let expected = credentials(in_an_hour());

        cache.write(&key, "bar", "role", &expected).unwrap();
        let found = cache.read(&key, Duration::from_secs(60)).unwrap();

        assert_eq!(found, expected);
    }

    #[test]
    fn modes_are_private_despite_umask() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sessions");
        let cache = Cache::new(dir.clone()).unwrap();
        let key = CacheKey::derive(&[("test", "modes")]);

        // SAFETY: umask only changes this process's file creation mask.
        let previous = unsafe { libc::umask(0) };
        let result = cache.write(&key, "bar", "role", &credentials(in_an_hour()));
        unsafe { libc::umask(previous) };
        result.unwrap();

        let dir_mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        let file_mode = fs::metadata(dir.join(format!("{}.json", key.as_str())))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(file_mode, 0o600);
    }

    #[test]
    fn entry_within_grace_is_miss() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::new(home.path().join("sessions")).unwrap();
        let key = CacheKey::derive(&[("test", "grace")]);
        cache
            .write(&key, "bar", "role", &credentials(in_an_hour()))
            .unwrap();

        assert!(cache.read(&key, Duration::from_secs(45 * 60)).is_some());
        assert!(cache.read(&key, Duration::from_secs(3600)).is_none());
    }

    #[test]
    fn invalid_entry_is_miss() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sessions");
        let cache = Cache::new(dir.clone()).unwrap();
        let key = CacheKey::derive(&[("test", "invalid")]);
        cache.ensure_dir().unwrap();
        let path = dir.join(format!("{}.json", key.as_str()));
        fs::write(&path, b"{ not json").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        assert!(cache.read(&key, Duration::ZERO).is_none());
    }

    #[test]
    fn world_readable_entry_is_rejected() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sessions");
        let cache = Cache::new(dir.clone()).unwrap();
        let key = CacheKey::derive(&[("test", "mode")]);
        cache
            .write(&key, "bar", "role", &credentials(in_an_hour()))
            .unwrap();
        let path = dir.join(format!("{}.json", key.as_str()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        assert!(read_entry(&path).unwrap_err().contains("644"));
        assert!(cache.read(&key, Duration::ZERO).is_none());
    }

    #[test]
    fn symlinked_entry_is_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("sessions");
        let cache = Cache::new(dir.clone()).unwrap();
        let key = CacheKey::derive(&[("test", "target")]);
        cache
            .write(&key, "bar", "role", &credentials(in_an_hour()))
            .unwrap();
        let link_key = CacheKey::derive(&[("test", "link")]);
        std::os::unix::fs::symlink(
            dir.join(format!("{}.json", key.as_str())),
            dir.join(format!("{}.json", link_key.as_str())),
        )
        .unwrap();

        assert!(cache.read(&link_key, Duration::ZERO).is_none());
        let reason = read_entry(&dir.join(format!("{}.json", link_key.as_str()))).unwrap_err();
        assert!(reason.contains("symbolic link"), "{reason}");
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let cache = Cache::disabled();
        let key = CacheKey::derive(&[("test", "disabled")]);
        cache
            .write(&key, "bar", "role", &credentials(in_an_hour()))
            .unwrap();
        assert!(cache.read(&key, Duration::ZERO).is_none());
        assert!(cache.lock(&key, "test").unwrap().is_none());
    }

    #[test]
    fn lock_times_out_with_message() {
        let home = tempfile::tempdir().unwrap();
        let mut cache = Cache::new(home.path().join("sessions")).unwrap();
        cache.lock_timeout = Duration::from_millis(100);
        let key = CacheKey::derive(&[("test", "lock")]);

        let _holder = cache.lock(&key, "MFA for profile 'bar'").unwrap();
        let error = cache.lock(&key, "MFA for profile 'bar'").err().unwrap();

        assert!(
            error.to_string().contains("MFA for profile 'bar'"),
            "{error}"
        );
    }

    #[test]
    fn first_process_fills_and_waiters_reread_together() {
        let home = tempfile::tempdir().unwrap();
        let cache = Cache::new(home.path().join("sessions")).unwrap();
        let key = CacheKey::derive(&[("test", "fill")]);

        let Turn::Fill(Some(holder)) = cache.lock_to_fill(&key, "test").unwrap() else {
            panic!("a free lock must be taken");
        };

        let (sender, receiver) = mpsc::channel();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let sender = sender.clone();
                let (cache, key) = (&cache, &key);
                scope.spawn(move || {
                    let turn = cache.lock_to_fill(key, "test").unwrap();
                    sender.send(matches!(turn, Turn::Reread)).unwrap();
                });
            }

            // No waiter gets through while the holder keeps the lock.
            assert!(receiver.recv_timeout(Duration::from_millis(200)).is_err());

            // Both get through once it lets go, without taking the lock for good.
            drop(holder);
            assert!(receiver.recv().unwrap());
            assert!(receiver.recv().unwrap());
        });
        assert!(matches!(
            cache.lock_to_fill(&key, "test").unwrap(),
            Turn::Fill(Some(_))
        ));
    }

    #[test]
    fn disabled_cache_fills_without_a_lock() {
        let cache = Cache::disabled();
        let key = CacheKey::derive(&[("test", "disabled")]);
        assert!(matches!(
            cache.lock_to_fill(&key, "test").unwrap(),
            Turn::Fill(None)
        ));
    }
}
