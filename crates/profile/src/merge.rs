//! Classification of raw sections and merging of both files into one `ProfileSet`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::parse::{RawSection, WHITESPACE};
use crate::{Location, Profile, ProfileSet, Property, Warning};

const DEFAULT: &str = "default";
const PROFILE_PREFIX: &str = "profile";
const SSO_SESSION_PREFIX: &str = "sso-session";
const SERVICES_PREFIX: &str = "services";
/// Single-word sections that the AWS CLI reads for itself, so they deserve no warning.
const CLI_SECTIONS: &[&str] = &["plugins", "preview"];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Config,
    Credentials,
}

/// Destination of the properties of one section.
enum Target {
    /// A profile. `prefixed` distinguishes `[profile default]` from `[default]`.
    Profile {
        name: String,
        prefixed: bool,
    },
    SsoSession(String),
    Services(String),
    /// A section that contains no profile and that awsu does not read.
    Ignored,
}

/// Merges the sections of one file into `set`. Later definitions replace earlier ones key by
/// key, so merging the credentials file after the config file makes its values win.
pub(crate) fn merge_file(
    set: &mut ProfileSet,
    sections: Vec<RawSection>,
    path: &Path,
    kind: FileKind,
) {
    let mut classified: Vec<(Target, RawSection)> = sections
        .into_iter()
        .map(|section| {
            let target = classify(&section, path, kind, &mut set.warnings);
            (target, section)
        })
        .collect();

    // The SDKs ignore every `[default]` in the config file once `[profile default]` appears.
    let has_prefixed_default = classified.iter().any(
        |(target, _)| matches!(target, Target::Profile { name, prefixed: true } if name == DEFAULT),
    );
    if has_prefixed_default {
        for (target, section) in &mut classified {
            if matches!(target, Target::Profile { name, prefixed: false } if name == DEFAULT) {
                set.warnings.push(warning(
                    path,
                    section.line,
                    "section [default] is ignored because this file also has [profile default], \
                     which takes precedence; move its properties into [profile default]"
                        .to_string(),
                ));
                *target = Target::Ignored;
            }
        }
    }

    for (target, section) in classified {
        let destination = match target {
            Target::Profile { name, .. } => entry(&mut set.profiles, name),
            Target::SsoSession(name) => entry(&mut set.sso_sessions, name),
            Target::Services(name) => entry(&mut set.services, name),
            Target::Ignored => continue,
        };
        merge_properties(destination, section, path, &mut set.warnings);
    }
}

fn entry(map: &mut BTreeMap<String, Profile>, name: String) -> &mut Profile {
    map.entry(name.clone()).or_insert_with(|| Profile {
        name,
        properties: BTreeMap::new(),
    })
}

fn merge_properties(
    destination: &mut Profile,
    section: RawSection,
    path: &Path,
    warnings: &mut Vec<Warning>,
) {
    for property in section.properties {
        if let Some(character) = invalid_character(&property.key, false) {
            // The name is not echoed because a malformed line could contain a secret.
            warnings.push(warning(
                path,
                property.line,
                format!(
                    "property is ignored because its name contains {}; property names may \
                     contain only ASCII letters, digits and - _ / . % @ : +",
                    describe(character)
                ),
            ));
            continue;
        }
        destination.properties.insert(
            property.key.to_ascii_lowercase(),
            Property {
                value: property.value,
                location: Location {
                    file: path.to_path_buf(),
                    line: property.line,
                },
                nested: property.nested,
            },
        );
    }
}

fn classify(
    section: &RawSection,
    path: &Path,
    kind: FileKind,
    warnings: &mut Vec<Warning>,
) -> Target {
    let header = section.header.as_str();
    let (first_word, rest) = match header.split_once(WHITESPACE) {
        Some((first, rest)) => (first, Some(rest.trim_matches(WHITESPACE))),
        None => (header, None),
    };
    let mut warn = |message: String| warnings.push(warning(path, section.line, message));

    match (kind, first_word, rest) {
        (FileKind::Config, DEFAULT, None) => Target::Profile {
            name: DEFAULT.to_string(),
            prefixed: false,
        },
        (FileKind::Config, PROFILE_PREFIX, Some(rest)) => {
            let name = unquote(rest);
            match check_name(name) {
                Ok(()) => Target::Profile {
                    name: name.to_string(),
                    prefixed: true,
                },
                Err(problem) => {
                    warn(format!("section [{header}] is ignored because {problem}"));
                    Target::Ignored
                }
            }
        }
        (FileKind::Config, PROFILE_PREFIX, None) => {
            warn(
                "section [profile] is ignored because it names no profile; write it as \
                 [profile NAME]"
                    .to_string(),
            );
            Target::Ignored
        }
        (FileKind::Config, SSO_SESSION_PREFIX | SERVICES_PREFIX, Some(name)) => {
            match check_name(name) {
                Ok(()) if first_word == SSO_SESSION_PREFIX => Target::SsoSession(name.to_string()),
                Ok(()) => Target::Services(name.to_string()),
                Err(problem) => {
                    warn(format!("section [{header}] is ignored because {problem}"));
                    Target::Ignored
                }
            }
        }
        (FileKind::Config, word, None) if CLI_SECTIONS.contains(&word) => Target::Ignored,
        (FileKind::Config, _, _) => {
            warn(format!(
                "section [{header}] is ignored: in the config file, the AWS CLI and SDKs read \
                 profiles only from [default] and [profile NAME] sections; if it is a profile, \
                 rename it to [profile {header}]"
            ));
            Target::Ignored
        }
        (FileKind::Credentials, PROFILE_PREFIX, Some(rest)) => {
            warn(format!(
                "section [{header}] is ignored: the credentials file names profiles without \
                 the `profile` prefix; rename it to [{rest}]"
            ));
            Target::Ignored
        }
        (FileKind::Credentials, SSO_SESSION_PREFIX | SERVICES_PREFIX, Some(_)) => {
            warn(format!(
                "section [{header}] is ignored because only the config file may contain \
                 [{first_word} ...] sections; move it to the config file"
            ));
            Target::Ignored
        }
        (FileKind::Credentials, _, _) => match check_name(header) {
            Ok(()) => Target::Profile {
                name: header.to_string(),
                prefixed: false,
            },
            Err(problem) => {
                warn(format!("section [{header}] is ignored because {problem}"));
                Target::Ignored
            }
        },
    }
}

/// Removes one pair of matching quotes, because botocore reads `[profile "my team"]` as the
/// profile `my team`.
fn unquote(name: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = name
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    name
}

/// Checks a profile or section name and returns the reason it is rejected.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("its name is empty; write it as [profile NAME]".to_string());
    }
    match invalid_character(name, true) {
        Some(character) => Err(format!(
            "its name contains {}; names may contain only ASCII letters, digits, spaces and \
             - _ / . % @ : +",
            describe(character)
        )),
        None => Ok(()),
    }
}

/// Returns the first character outside the set that the AWS SDKs accept in identifiers,
/// `[A-Za-z0-9_\-/.%@:+]`, extended with the space character when `allow_space` is set.
fn invalid_character(name: &str, allow_space: bool) -> Option<char> {
    name.chars().find(|&character| {
        let valid = character.is_ascii_alphanumeric()
            || "_-/.%@:+".contains(character)
            || (allow_space && character == ' ');
        !valid
    })
}

fn describe(character: char) -> String {
    if character.is_control() || character.is_whitespace() {
        format!("the character U+{:04X}", u32::from(character))
    } else {
        format!("the character `{character}`")
    }
}

fn warning(path: &Path, line: usize, message: String) -> Warning {
    Warning {
        file: path.to_path_buf(),
        line,
        message,
    }
}
