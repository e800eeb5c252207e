//! Resolution of a profile into a credential chain: the long-term (or already
//! temporary) base keys, an optional MFA serial for a session token, and the
//! roles to assume, innermost first.
//!
//! Everything here is checked before any prompt or network call, so that a
//! broken config never costs a one-time password.

use awsu_profile::{Profile, ProfileSet};

use crate::credentials::{Credentials, Secret};
use crate::error::Error;

/// Credential settings that awsu cannot resolve itself, with the fix to suggest.
const UNSUPPORTED_KEYS: &[&str] = &[
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "sso_session",
    "sso_start_url",
];

/// A resolved profile: where the keys come from and what to do with them.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Profile names from the requested profile to the one with the keys.
    pub profiles: Vec<String>,
    pub base: Base,
    /// MFA serial for the session token (or the first role when the base keys are temporary).
    pub serial: Option<Serial>,
    /// Roles to assume, innermost (closest to the base keys) first.
    pub roles: Vec<RoleStep>,
    /// Region of the nearest profile on the chain that sets one, for AWS calls.
    pub region: Option<String>,
    /// Region of the requested profile itself, which is exported as the AWS
    /// CLI would use it (a source profile's region does not carry over).
    pub profile_region: Option<String>,
}

/// The profile with the access key pair at the root of a chain.
#[derive(Debug, Clone)]
pub struct Base {
    pub profile: String,
    pub credentials: Credentials,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serial {
    pub arn: String,
    /// Profile whose `mfa_serial` set it, or `None` when it came from `--mfa`.
    pub profile: Option<String>,
}

/// One AssumeRole call of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStep {
    pub profile: String,
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    /// The profile's own `duration_seconds`, if set.
    pub duration_seconds: Option<u64>,
}

impl Chain {
    /// Tells whether the chain ends in credentials that expire and so are cached.
    pub fn is_cacheable(&self) -> bool {
        !self.roles.is_empty() || (self.serial.is_some() && !self.base.credentials.is_temporary())
    }

    /// Tells whether a GetSessionToken call with the serial starts the chain.
    pub fn uses_session_token(&self) -> bool {
        self.serial.is_some() && !self.base.credentials.is_temporary()
    }

    /// Renders the chain for verbose output, e.g. `bar -> default`.
    pub fn describe(&self) -> String {
        self.profiles.join(" -> ")
    }
}

/// Resolves `name` in `profiles`. `serial_override` is `--mfa`, which wins over
/// any `mfa_serial` on the chain; `default_session_name` is used for roles
/// without `role_session_name`.
pub fn resolve(
    profiles: &ProfileSet,
    name: &str,
    serial_override: Option<&str>,
    default_session_name: &str,
) -> Result<Chain, Error> {
    let mut visited: Vec<String> = Vec::new();
    let mut roles: Vec<RoleStep> = Vec::new();
    let mut serial: Option<Serial> = None;
    let mut region: Option<String> = None;
    let mut current = lookup(profiles, name, None)?;
    let profile_region = non_empty(current.get("region")).map(str::to_owned);

    let base = loop {
        let profile_name = current.name().to_owned();
        if visited.contains(&profile_name) {
            visited.push(profile_name);
            return Err(Error::SourceProfileLoop {
                chain: visited.join(" -> "),
            });
        }
        visited.push(profile_name.clone());

        for key in UNSUPPORTED_KEYS {
            if current.get(key).is_some() && current.get("role_arn").is_none() {
                return Err(Error::UnsupportedCredentials {
                    profile: profile_name,
                    key: (*key).to_owned(),
                });
            }
        }
        if serial.is_none() {
            serial = non_empty(current.get("mfa_serial")).map(|arn| Serial {
                arn: arn.to_owned(),
                profile: Some(profile_name.clone()),
            });
        }
        if region.is_none() {
            region = non_empty(current.get("region")).map(str::to_owned);
        }

        let source = non_empty(current.get("source_profile"));
        let role_arn = non_empty(current.get("role_arn"));
        if let Some(role_arn) = role_arn {
            if source.is_none() {
                let key = UNSUPPORTED_KEYS
                    .iter()
                    .find(|key| current.get(key).is_some())
                    .unwrap_or(&"source_profile");
                return Err(Error::RoleWithoutSource {
                    profile: profile_name,
                    key: (*key).to_owned(),
                });
            }
            roles.push(role_step(current, role_arn, default_session_name)?);
        }

        match source {
            Some(source) if source != profile_name => {
                current = lookup(profiles, source, Some(&profile_name))?;
            }
            Some(_) => match static_keys(current)? {
                Some(credentials) => break Base { profile: profile_name, credentials },
                None => {
                    return Err(Error::MissingKeys {
                        profile: profile_name,
                        hint: "it names itself as source_profile, so it needs aws_access_key_id and aws_secret_access_key",
                    })
                }
            },
            None => match static_keys(current)? {
                Some(credentials) => break Base { profile: profile_name, credentials },
                None => {
                    return Err(Error::MissingKeys {
                        profile: profile_name,
                        hint: "add aws_access_key_id and aws_secret_access_key, or role_arn and source_profile",
                    })
                }
            },
        }
    };

    if let Some(arn) = serial_override.filter(|arn| !arn.is_empty()) {
        serial = Some(Serial {
            arn: arn.to_owned(),
            profile: None,
        });
    }
    if let Some(serial) = &serial {
        check_serial(&serial.arn)?;
    }
    roles.reverse();

    Ok(Chain {
        profiles: visited,
        base,
        serial,
        roles,
        region,
        profile_region,
    })
}

/// Returns the `mfa_serial` nearest to `name` along its `source_profile`
/// links, without requiring keys anywhere (for `awsu token`).
pub fn find_serial(profiles: &ProfileSet, name: &str) -> Result<Option<String>, Error> {
    let mut visited: Vec<String> = Vec::new();
    let mut current = lookup(profiles, name, None)?;
    loop {
        if let Some(serial) = non_empty(current.get("mfa_serial")) {
            check_serial(serial)?;
            return Ok(Some(serial.to_owned()));
        }
        visited.push(current.name().to_owned());
        match non_empty(current.get("source_profile")) {
            Some(source) if !visited.iter().any(|name| name == source) => {
                current = lookup(profiles, source, Some(current.name()))?;
            }
            _ => return Ok(None),
        }
    }
}

/// Checks an MFA serial against STS's rule for SerialNumber (9 to 256
/// characters of letters, digits and `_+=/:,.@-`), so that a typo fails
/// before a one-time password is asked for.
pub fn check_serial(serial: &str) -> Result<(), Error> {
    let valid = (9..=256).contains(&serial.len())
        && serial
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "_+=/:,.@-".contains(character));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidSerial {
            serial: serial.to_owned(),
        })
    }
}

fn lookup<'a>(
    profiles: &'a ProfileSet,
    name: &str,
    referenced_by: Option<&str>,
) -> Result<&'a Profile, Error> {
    profiles.profile(name).ok_or_else(|| match referenced_by {
        None => Error::ProfileNotFound {
            profile: name.to_owned(),
            known: describe_names(profiles),
        },
        Some(referrer) => Error::SourceProfileNotFound {
            profile: referrer.to_owned(),
            source_profile: name.to_owned(),
        },
    })
}

/// Lists the defined profiles for an error message, at most 10 of them.
fn describe_names(profiles: &ProfileSet) -> String {
    let names: Vec<&str> = profiles.names().collect();
    match names.len() {
        0 => "no profiles are defined".to_owned(),
        count if count <= 10 => format!("defined: {}", names.join(", ")),
        count => format!(
            "defined: {}, and {} more",
            names[..10].join(", "),
            count - 10
        ),
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

/// Reads the profile's access key pair; a half-written pair is an error.
fn static_keys(profile: &Profile) -> Result<Option<Credentials>, Error> {
    let access_key_id = non_empty(profile.get("aws_access_key_id"));
    let secret_access_key = non_empty(profile.get("aws_secret_access_key"));

    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: non_empty(profile.get("aws_session_token")).map(Secret::new),
            expiration: None,
        })),
        (Some(_), None) => Err(Error::HalfKeyPair {
            profile: profile.name().to_owned(),
            missing: "aws_secret_access_key",
        }),
        (None, Some(_)) => Err(Error::HalfKeyPair {
            profile: profile.name().to_owned(),
            missing: "aws_access_key_id",
        }),
        (None, None) => Ok(None),
    }
}

fn role_step(
    profile: &Profile,
    role_arn: &str,
    default_session_name: &str,
) -> Result<RoleStep, Error> {
    let session_name = match non_empty(profile.get("role_session_name")) {
        Some(name) if is_valid_session_name(name) => name.to_owned(),
        Some(name) => {
            return Err(Error::InvalidSessionName {
                profile: profile.name().to_owned(),
                name: name.to_owned(),
            })
        }
        None => default_session_name.to_owned(),
    };

    let duration_seconds = match non_empty(profile.get("duration_seconds")) {
        None => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| Error::InvalidProfileValue {
                    profile: profile.name().to_owned(),
                    key: "duration_seconds",
                    value: text.to_owned(),
                    expected: "a whole number of seconds between 900 and 43200",
                })?,
        ),
    };

    Ok(RoleStep {
        profile: profile.name().to_owned(),
        role_arn: role_arn.to_owned(),
        external_id: non_empty(profile.get("external_id")).map(str::to_owned),
        session_name,
        duration_seconds,
    })
}

/// Checks a role session name against STS's rule: 2 to 64 characters of
/// letters, digits and `_+=,.@-`.
pub fn is_valid_session_name(name: &str) -> bool {
    (2..=64).contains(&name.len()) && name.chars().all(is_session_name_char)
}

fn is_session_name_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || "_+=,.@-".contains(character)
}

/// Derives a role session name from the local user name: `awsu-USER`, with
/// characters STS rejects replaced by `-` and cut to 64 characters.
pub fn session_name_for_user(user: Option<&str>) -> String {
    let user: String = user
        .unwrap_or("")
        .chars()
        .map(|character| {
            if is_session_name_char(character) {
                character
            } else {
                '-'
            }
        })
        .collect();

    let mut name = if user.is_empty() {
        "awsu".to_owned()
    } else {
        format!("awsu-{user}")
    };
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const EXAMPLE: &str = "\
[default]
aws_access_key_id     = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

[foo]
aws_access_key_id     = AKIAI44QH8DHBEXAMPLE
aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
mfa_serial            = arn:aws:iam::123456789012:mfa/foo

[bar]
mfa_serial            = arn:aws:iam::123456789012:mfa/bar
role_arn              = arn:aws:iam::123456789012:role/foo-cross-account
source_profile        = default

[wee]
external_id           = 1a03197b-3cb5-491b-bc06-84795afc95ef
mfa_serial            = arn:aws:iam::123456789012:mfa/wee
role_arn              = arn:aws:iam::123456789012:role/bar-cross-account
source_profile        = default

[gee]
role_arn              = arn:aws:iam::123456789012:role/wee-cross-account
source_profile        = foo
";

    fn profiles(credentials: &str) -> ProfileSet {
        awsu_profile::parse(
            "",
            Path::new("config"),
            credentials,
            Path::new("credentials"),
        )
        .unwrap()
    }

    fn resolve_example(name: &str, serial: Option<&str>) -> Result<Chain, Error> {
        resolve(&profiles(EXAMPLE), name, serial, "awsu-test")
    }

    #[test]
    fn default_is_long_term() {
        let chain = resolve_example("default", None).unwrap();
        assert_eq!(chain.base.credentials.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(chain.serial.is_none());
        assert!(chain.roles.is_empty());
        assert!(!chain.is_cacheable());
    }

    #[test]
    fn default_with_mfa_flag_gets_session_token() {
        let chain = resolve_example("default", Some("arn:aws:iam::123456789012:mfa/x")).unwrap();
        assert_eq!(chain.serial.as_ref().unwrap().profile, None);
        assert!(chain.uses_session_token());
        assert!(chain.is_cacheable());
    }

    #[test]
    fn foo_uses_own_serial() {
        let chain = resolve_example("foo", None).unwrap();
        assert_eq!(
            chain.serial.unwrap().arn,
            "arn:aws:iam::123456789012:mfa/foo"
        );
        assert!(chain.roles.is_empty());
    }

    #[test]
    fn bar_is_session_then_role() {
        let chain = resolve_example("bar", None).unwrap();
        assert_eq!(chain.profiles, ["bar", "default"]);
        assert_eq!(chain.base.profile, "default");
        assert_eq!(
            chain.serial.unwrap().arn,
            "arn:aws:iam::123456789012:mfa/bar"
        );
        assert_eq!(chain.roles.len(), 1);
        assert_eq!(chain.roles[0].external_id, None);
        assert_eq!(chain.roles[0].session_name, "awsu-test");
    }

    #[test]
    fn wee_carries_external_id() {
        let chain = resolve_example("wee", None).unwrap();
        assert_eq!(
            chain.roles[0].external_id.as_deref(),
            Some("1a03197b-3cb5-491b-bc06-84795afc95ef")
        );
    }

    #[test]
    fn gee_takes_serial_from_source() {
        let chain = resolve_example("gee", None).unwrap();
        assert_eq!(chain.profiles, ["gee", "foo"]);
        let serial = chain.serial.unwrap();
        assert_eq!(serial.arn, "arn:aws:iam::123456789012:mfa/foo");
        assert_eq!(serial.profile.as_deref(), Some("foo"));
    }

    #[test]
    fn mfa_flag_overrides_profile_serial() {
        let chain = resolve_example("bar", Some("arn:aws:iam::123456789012:mfa/other")).unwrap();
        assert_eq!(
            chain.serial.unwrap().arn,
            "arn:aws:iam::123456789012:mfa/other"
        );
    }

    #[test]
    fn multi_hop_roles_are_innermost_first() {
        let text = format!(
            "{EXAMPLE}
[hop1]
role_arn = arn:aws:iam::123456789012:role/one
source_profile = bar
[hop2]
role_arn = arn:aws:iam::123456789012:role/two
source_profile = hop1
mfa_serial = arn:aws:iam::123456789012:mfa/near
"
        );
        let chain = resolve(&profiles(&text), "hop2", None, "awsu-test").unwrap();
        assert_eq!(chain.profiles, ["hop2", "hop1", "bar", "default"]);
        let arns: Vec<_> = chain
            .roles
            .iter()
            .map(|role| role.role_arn.as_str())
            .collect();
        assert_eq!(
            arns,
            [
                "arn:aws:iam::123456789012:role/foo-cross-account",
                "arn:aws:iam::123456789012:role/one",
                "arn:aws:iam::123456789012:role/two"
            ]
        );
        assert_eq!(
            chain.serial.unwrap().arn,
            "arn:aws:iam::123456789012:mfa/near"
        );
    }

    #[test]
    fn keys_and_source_follow_source() {
        let text = format!(
            "{EXAMPLE}
[both]
aws_access_key_id = AKIAI44QH8DHBEXAMPLE
aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
role_arn = arn:aws:iam::123456789012:role/both
source_profile = default
"
        );
        let chain = resolve(&profiles(&text), "both", None, "awsu-test").unwrap();
        assert_eq!(chain.base.profile, "default");
        assert_eq!(chain.base.credentials.access_key_id, "AKIAIOSFODNN7EXAMPLE");
    }

    #[test]
    fn self_reference_uses_own_keys() {
        let text = "
[me]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
role_arn = arn:aws:iam::123456789012:role/self
source_profile = me
";
        let chain = resolve(&profiles(text), "me", None, "awsu-test").unwrap();
        assert_eq!(chain.base.profile, "me");
        assert_eq!(chain.profiles, ["me"]);
        assert_eq!(chain.roles.len(), 1);
    }

    #[test]
    fn loop_names_every_profile() {
        let text = "
[a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = b
[b]
role_arn = arn:aws:iam::123456789012:role/b
source_profile = c
[c]
role_arn = arn:aws:iam::123456789012:role/c
source_profile = a
";
        let error = resolve(&profiles(text), "a", None, "awsu-test").unwrap_err();
        assert!(error.to_string().contains("a -> b -> c -> a"), "{error}");
    }

    #[test]
    fn missing_source_names_both_profiles() {
        let text = "
[a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = nowhere
";
        let message = resolve(&profiles(text), "a", None, "awsu-test")
            .unwrap_err()
            .to_string();
        assert!(message.contains("'a'"), "{message}");
        assert!(message.contains("'nowhere'"), "{message}");
    }

    #[test]
    fn half_key_pair_is_rejected() {
        let text = "
[half]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
";
        let message = resolve(&profiles(text), "half", None, "awsu-test")
            .unwrap_err()
            .to_string();
        assert!(message.contains("aws_secret_access_key"), "{message}");
        assert!(message.contains("'half'"), "{message}");
    }

    #[test]
    fn malformed_serial_is_rejected() {
        let error = resolve_example("default", Some("notanarn")).unwrap_err();
        assert!(matches!(error, Error::InvalidSerial { .. }), "{error}");
        assert!(check_serial("GAHT12345678").is_ok());
        assert!(check_serial("arn:aws:iam::123456789012:mfa/a b").is_err());
    }

    #[test]
    fn find_serial_needs_no_keys() {
        let text = "
[base]
mfa_serial = arn:aws:iam::123456789012:mfa/base
[role]
role_arn = arn:aws:iam::123456789012:role/r
source_profile = base
[plain]
region = eu-west-1
";
        let set = profiles(text);
        assert_eq!(
            find_serial(&set, "role").unwrap().as_deref(),
            Some("arn:aws:iam::123456789012:mfa/base")
        );
        assert_eq!(find_serial(&set, "plain").unwrap(), None);
    }

    #[test]
    fn unknown_profile_is_rejected() {
        let error = resolve_example("missing", None).unwrap_err();
        assert!(matches!(error, Error::ProfileNotFound { .. }), "{error}");
    }

    #[test]
    fn session_name_is_validated() {
        let text = format!(
            "{EXAMPLE}
[named]
role_arn = arn:aws:iam::123456789012:role/named
source_profile = default
role_session_name = has space
"
        );
        let error = resolve(&profiles(&text), "named", None, "awsu-test").unwrap_err();
        assert!(matches!(error, Error::InvalidSessionName { .. }), "{error}");
    }

    #[test]
    fn session_name_from_user_is_sanitised() {
        assert_eq!(session_name_for_user(Some("jane.doe")), "awsu-jane.doe");
        assert_eq!(
            session_name_for_user(Some("DOMAIN\\jane doe")),
            "awsu-DOMAIN-jane-doe"
        );
        assert_eq!(session_name_for_user(None), "awsu");
        assert_eq!(session_name_for_user(Some(&"x".repeat(100))).len(), 64);
        assert!(is_valid_session_name(&session_name_for_user(Some("名前"))));
    }

    #[test]
    fn session_name_rule_matches_sts() {
        assert!(is_valid_session_name("ab"));
        assert!(is_valid_session_name("user@example.com,x=y+z_w-1"));
        assert!(!is_valid_session_name("a"));
        assert!(!is_valid_session_name(&"a".repeat(65)));
        assert!(!is_valid_session_name("a/b"));
    }
}
