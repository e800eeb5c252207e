//! Handing credentials over: shell `export` lines for `eval`, or the
//! environment of a program that replaces awsu.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::credentials::Credentials;
use crate::error::Error;

/// Variables that could carry stale credentials or point the program at
/// another profile; they are removed before the new values are set.
const STALE_VARIABLES: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWSU_EXPIRES",
];

/// Returns the variables to set, in order, for credentials of `profile`.
pub fn variables(
    credentials: &Credentials,
    profile: &str,
    region: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut variables = vec![
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY",
            credentials.secret_access_key.expose().to_owned(),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        variables.push(("AWS_SESSION_TOKEN", token.expose().to_owned()));
    }
    if let Some(expiration) = credentials.expiration_rfc3339() {
        variables.push(("AWS_CREDENTIAL_EXPIRATION", expiration.clone()));
        variables.push(("AWSU_EXPIRES", expiration));
    }
    variables.push(("AWSU_PROFILE", profile.to_owned()));
    if let Some(region) = region {
        variables.push(("AWS_REGION", region.to_owned()));
        variables.push(("AWS_DEFAULT_REGION", region.to_owned()));
    }
    variables
}

/// Renders POSIX shell lines for `eval "$(awsu)"`. Long-term keys also unset
/// any session token and expiration left from earlier exports.
pub fn export_lines(credentials: &Credentials, profile: &str, region: Option<&str>) -> String {
    let mut lines = String::new();
    for (name, value) in variables(credentials, profile, region) {
        lines.push_str(&format!("export {name}={}\n", shell_quote(&value)));
    }

    let mut unset: Vec<&str> = vec!["AWS_SECURITY_TOKEN"];
    if credentials.session_token.is_none() {
        unset.insert(0, "AWS_SESSION_TOKEN");
    }
    if credentials.expiration.is_none() {
        unset.extend(["AWS_CREDENTIAL_EXPIRATION", "AWSU_EXPIRES"]);
    }
    lines.push_str(&format!("unset {}\n", unset.join(" ")));
    lines
}

/// Quotes a value for POSIX shells: single quotes, with `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Replaces awsu with `program`, so that signals and the exit status are the
/// program's own. Returns only on failure.
pub fn exec(
    program: &[OsString],
    credentials: &Credentials,
    profile: &str,
    region: Option<&str>,
) -> Error {
    let Some((name, arguments)) = program.split_first() else {
        return Error::Other("no program given after --".into());
    };

    let mut command = Command::new(name);
    command.args(arguments);
    for variable in STALE_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(variables(credentials, profile, region));

    tracing::info!("running {}", name.to_string_lossy());
    let source = command.exec();
    Error::Exec {
        program: name.to_string_lossy().into_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Secret;

    fn long_term() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
            expiration: None,
        }
    }

    #[test]
    fn quote_handles_shell_metacharacters() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            shell_quote("$(rm -rf /) `x` \"y\""),
            "'$(rm -rf /) `x` \"y\"'"
        );
    }

    #[test]
    fn long_term_export_unsets_token() {
        let lines = export_lines(&long_term(), "default", None);
        assert!(lines.contains("export AWS_ACCESS_KEY_ID='AKIAIOSFODNN7EXAMPLE'\n"));
        assert!(lines.contains("unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"));
        assert!(!lines.contains("export AWS_SESSION_TOKEN"));
        assert!(!lines.contains("AWS_REGION"));
        assert!(lines.contains("export AWSU_PROFILE='default'\n"));
    }

    #[test]
    fn temporary_export_sets_expiration_and_region() {
        let mut credentials = long_term();
        credentials.session_token = Some(Secret::new("token"));
        credentials.expiration = Some(1_796_415_300);

        let lines = export_lines(&credentials, "bar", Some("eu-west-1"));

        assert!(lines.contains("export AWS_SESSION_TOKEN='token'\n"));
        assert!(lines.contains("export AWS_CREDENTIAL_EXPIRATION='2026-12-04T20:15:00Z'\n"));
        assert!(lines.contains("export AWSU_EXPIRES='2026-12-04T20:15:00Z'\n"));
        assert!(lines.contains("export AWS_REGION='eu-west-1'\n"));
        assert!(lines.contains("export AWS_DEFAULT_REGION='eu-west-1'\n"));
        assert!(lines.ends_with("unset AWS_SECURITY_TOKEN\n"));
    }

    #[test]
    fn exec_of_missing_program_is_127() {
        let error = exec(
            &["/nonexistent/awsu-test-program".into()],
            &long_term(),
            "default",
            None,
        );
        assert_eq!(error.exit_code(), 127);
    }
}
