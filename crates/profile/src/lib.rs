//! Parser for the AWS shared config file (`~/.aws/config`) and credentials file
//! (`~/.aws/credentials`), merged into named profiles as the AWS CLI and SDKs merge them.
//!
//! The rules follow the profile parser test vectors that the AWS SDKs share
//! (`aws-config/test-data/profile-parser-tests.json` in smithy-rs):
//!
//! - Lines whose first character is `#` or `;` are comments, and blank lines are skipped. Only
//!   spaces and tabs count as whitespace.
//! - `#` or `;` ends a section header line anywhere after the `]`, with or without a space
//!   before it. In a `name = value` line it starts a comment only after a space or tab, so
//!   `key = a;b` keeps `a;b`.
//! - A line that starts with a space or tab continues the previous property: its trimmed text
//!   is appended to the value after a `\n`, comment characters included. If the property's own
//!   line has an empty value (`s3 =`), the indented lines are sub-properties. Each of them must
//!   have the form `name = value`, and [`Profile::sub_properties`] returns them.
//! - Names and values are trimmed, a value may be empty and may contain `=`, and `\r\n` line
//!   endings work. A leading UTF-8 byte order mark is skipped.
//! - Property names are case-insensitive: they are stored in lower case, and a later definition
//!   of the same name replaces an earlier one, also across repeated sections of one profile.
//!   Profile names are case-sensitive.
//! - Sections with the same name are merged. Values from the credentials file replace values
//!   from the config file key by key.
//! - In the config file, profiles are `[default]` and `[profile NAME]`. If `[profile default]`
//!   appears, every `[default]` section of the config file is ignored.
//! - In the credentials file, profiles are `[NAME]`. A `[profile NAME]` section there is
//!   ignored, because the `profile ` prefix is not stripped in that file.
//! - `[sso-session NAME]` and `[services NAME]` sections of the config file are kept apart from
//!   profiles ([`ProfileSet::sso_session`], [`ProfileSet::services`]).
//! - Names may contain ASCII letters, digits and `- _ / . % @ : +`. Sections and properties
//!   with other characters are ignored.
//! - Syntax errors stop parsing. [`Error::Syntax`] carries the file and the 1-based line.
//!
//! Differences from the SDK test vectors, which awsu needs:
//!
//! - Profile and section names may also contain spaces (`[profile my team/prod.eu]`), as
//!   botocore allows. The Rust SDK ignores such profiles. One pair of surrounding quotes is
//!   removed from a config-file profile name, so `[profile "my team"]` is the profile `my team`,
//!   as in botocore.
//! - Every ignored section or property produces a [`Warning`] with the file, the line and the
//!   fix, where the SDKs ignore it silently or only log it. This matters most for a config-file
//!   section such as `[bar]`: the AWS CLI ignores it, but earlier versions of awsu read it as
//!   the profile `bar`. The sections `[plugins]` and `[preview]`, which the AWS CLI reads, are
//!   ignored without a warning.
//! - [`load`] treats a missing file as empty. A file that exists but cannot be read (no
//!   permission, a directory) is an [`Error::Io`] that names the path.
//!
//! Where the AWS CLI (botocore) and the SDK vectors disagree, this crate follows the vectors.
//! botocore keeps ` # comment` as part of a value, rejects a section repeated in one file, and
//! treats an indented comment line as a comment rather than a continuation.
//!
//! `Debug` output of [`Profile`] and [`ProfileSet`] replaces the value of every property whose
//! name contains `secret` or `token` (such as `aws_secret_access_key` and `aws_session_token`)
//! with `<redacted>`. Errors and warnings never contain property values.

mod merge;
mod parse;
mod sources;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use sources::Sources;

use merge::FileKind;

/// Reads and merges the config file and the credentials file.
///
/// A missing file counts as empty. Returns [`Error::Io`] when a file exists but cannot be read,
/// and [`Error::Syntax`] for the first invalid line or a file that is not UTF-8.
pub fn load(config: &Path, credentials: &Path) -> Result<ProfileSet, Error> {
    let config_text = read_file(config)?;
    let credentials_text = read_file(credentials)?;
    parse(&config_text, config, &credentials_text, credentials)
}

/// Parses and merges the text of both files. The paths are used only in locations, warnings
/// and errors.
pub fn parse(
    config_text: &str,
    config_path: &Path,
    credentials_text: &str,
    credentials_path: &Path,
) -> Result<ProfileSet, Error> {
    let config_sections = parse::parse_file(config_text, config_path)?;
    let credentials_sections = parse::parse_file(credentials_text, credentials_path)?;

    let mut set = ProfileSet::default();
    merge::merge_file(&mut set, config_sections, config_path, FileKind::Config);
    merge::merge_file(
        &mut set,
        credentials_sections,
        credentials_path,
        FileKind::Credentials,
    );
    for warning in &set.warnings {
        tracing::debug!(%warning, "profile file warning");
    }
    Ok(set)
}

fn read_file(path: &Path) -> Result<String, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "profile file not found, treated as empty");
            return Ok(String::new());
        }
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "read profile file");
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
        Error::Syntax {
            file: path.to_path_buf(),
            line,
            message: "line is not valid UTF-8; save the file with UTF-8 encoding".to_string(),
        }
    })
}

/// Profiles and other sections merged from the config and credentials files.
#[derive(Clone, Default)]
pub struct ProfileSet {
    profiles: BTreeMap<String, Profile>,
    sso_sessions: BTreeMap<String, Profile>,
    services: BTreeMap<String, Profile>,
    warnings: Vec<Warning>,
}

impl ProfileSet {
    /// Returns the profile with exactly this name. Profile names are case-sensitive.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Returns the profile names in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// Returns the `[sso-session NAME]` section of the config file with this name.
    pub fn sso_session(&self, name: &str) -> Option<&Profile> {
        self.sso_sessions.get(name)
    }

    /// Returns the `[services NAME]` section of the config file with this name.
    pub fn services(&self, name: &str) -> Option<&Profile> {
        self.services.get(name)
    }

    /// Returns the sections and properties that were ignored, in file order, config file first.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
}

impl fmt::Debug for ProfileSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileSet")
            .field("profiles", &self.profiles.values().collect::<Vec<_>>())
            .field(
                "sso_sessions",
                &self.sso_sessions.values().collect::<Vec<_>>(),
            )
            .field("services", &self.services.values().collect::<Vec<_>>())
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// A profile, or another named section such as `[sso-session NAME]`, with its properties
/// merged from both files.
#[derive(Clone)]
pub struct Profile {
    name: String,
    /// Keyed by the lower-case property name.
    properties: BTreeMap<String, Property>,
}

#[derive(Clone)]
struct Property {
    value: String,
    location: Location,
    nested: bool,
}

impl Profile {
    /// Returns the profile name, without the `profile ` prefix.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the value of a property. The name is matched case-insensitively.
    ///
    /// A property with sub-properties returns its raw text: `\n` followed by the sub-property
    /// lines, as the SDK vectors define it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.property(key).map(|property| property.value.as_str())
    }

    /// Returns the file and line of the definition that supplied the value of a property.
    pub fn location(&self, key: &str) -> Option<&Location> {
        self.property(key).map(|property| &property.location)
    }

    /// Returns the property names, in lower case and byte order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.properties.keys().map(String::as_str)
    }

    /// Returns the sub-properties of a property whose own line has no value, such as
    /// `s3 =` followed by indented `name = value` lines.
    ///
    /// Returns `None` when the property is missing or has a value on its own line. Sub-property
    /// names keep their case, a later line with the same name wins, and values keep comment
    /// characters because the SDKs do not strip comments from continuation lines.
    pub fn sub_properties(&self, key: &str) -> Option<BTreeMap<&str, &str>> {
        let property = self.property(key)?;
        if !property.nested {
            return None;
        }
        Some(split_sub_properties(&property.value))
    }

    fn property(&self, key: &str) -> Option<&Property> {
        match self.properties.get(key) {
            Some(property) => Some(property),
            None => self.properties.get(&key.to_ascii_lowercase()),
        }
    }
}

/// Splits the `\n`-joined lines of a nested property. The parser has already rejected lines
/// without `=` or without a name, so lines that fail to split here cannot occur.
fn split_sub_properties(value: &str) -> BTreeMap<&str, &str> {
    value
        .split('\n')
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            (
                key.trim_matches(parse::WHITESPACE),
                value.trim_matches(parse::WHITESPACE),
            )
        })
        .collect()
}

fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("secret") || key.contains("token")
}

/// Debug view of a value that hides secrets.
struct RedactedValue<'a> {
    key: &'a str,
    property: &'a Property,
}

impl fmt::Debug for RedactedValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_sensitive(self.key) {
            return f.write_str("<redacted>");
        }
        if !self.property.nested {
            return fmt::Debug::fmt(&self.property.value, f);
        }
        let mut map = f.debug_map();
        for (key, value) in split_sub_properties(&self.property.value) {
            if is_sensitive(key) {
                map.entry(&key, &format_args!("<redacted>"));
            } else {
                map.entry(&key, &value);
            }
        }
        map.finish()
    }
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut properties = BTreeMap::new();
        for (key, property) in &self.properties {
            properties.insert(key.as_str(), RedactedValue { key, property });
        }
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("properties", &properties)
            .finish()
    }
}

/// A file and a 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A section or property that was ignored. The message explains why and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Failure to read or parse a profile file.
#[derive(Debug)]
pub enum Error {
    /// The file exists but could not be read.
    Io { path: PathBuf, source: io::Error },
    /// A line is invalid. `message` explains what is wrong and how to fix it.
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A default path starts with `~`, but no home directory variable is set.
    HomeNotFound,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(
                f,
                "failed to read {}: {source}; make it a readable file or remove it",
                path.display()
            ),
            Error::Syntax {
                file,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", file.display()),
            Error::HomeNotFound => f.write_str(
                "cannot locate ~/.aws because none of HOME, USERPROFILE or HOMEDRIVE and \
                 HOMEPATH is set; set HOME, or set AWS_CONFIG_FILE and \
                 AWS_SHARED_CREDENTIALS_FILE to absolute paths",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Syntax { .. } | Error::HomeNotFound => None,
        }
    }
}
