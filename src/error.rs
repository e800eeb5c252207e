//! The one error type of awsu. Each message names what failed and what to do next.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] awsu_profile::Error),

    #[error("profile '{profile}' not found in the config or credentials file ({known}): check --profile / AWS_PROFILE, or add [profile {profile}] to the config file")]
    ProfileNotFound { profile: String, known: String },

    #[error("profile '{profile}' names source_profile '{source_profile}', which is not defined: add it, or fix the name")]
    SourceProfileNotFound {
        profile: String,
        source_profile: String,
    },

    #[error("source_profile loop: {chain}: make one of these profiles hold keys instead of a source_profile")]
    SourceProfileLoop { chain: String },

    #[error("profile '{profile}' has no credentials: {hint}")]
    MissingKeys { profile: String, hint: &'static str },

    #[error("profile '{profile}' has only half of an access key pair: add {missing}")]
    HalfKeyPair {
        profile: String,
        missing: &'static str,
    },

    #[error("profile '{profile}' uses {key}, which awsu does not support: use static keys or role_arn with source_profile")]
    UnsupportedCredentials { profile: String, key: String },

    #[error("profile '{profile}' has role_arn but no source_profile ({key} is not supported by awsu): add source_profile")]
    RoleWithoutSource { profile: String, key: String },

    #[error("invalid role_session_name '{name}' in profile '{profile}': use 2 to 64 letters, digits or _+=,.@-")]
    InvalidSessionName { profile: String, name: String },

    #[error("invalid {key} '{value}' in profile '{profile}': expected {expected}")]
    InvalidProfileValue {
        profile: String,
        key: &'static str,
        value: String,
        expected: &'static str,
    },

    #[error("{0}")]
    InvalidDuration(String),

    #[error("invalid MFA serial '{serial}': expected the device's ARN, such as arn:aws:iam::123456789012:mfa/NAME, or a hardware token's serial number")]
    InvalidSerial { serial: String },

    #[error("profile '{profile}' has no mfa_serial: add one to the profile, or pass --mfa SERIAL")]
    NoSerial { profile: String },

    #[error("invalid one-time password: expected 6 digits")]
    InvalidCodeInput,

    #[error("no one-time password was entered (end of input): type the 6-digit code for {serial}")]
    CodeInputClosed { serial: String },

    #[error("could not read the one-time password: {0}")]
    Prompt(std::io::Error),

    #[error("the one-time password for {serial} was rejected by AWS: check that the code was current, entered correctly and not used before (AWS accepts each code once), that the device is the one registered for this serial, and that this machine's clock is correct, then try again")]
    CodeRejected { serial: String },

    #[error("AWS rejected the keys of profile '{profile}' ({code}): the access key is unknown, inactive or its secret is wrong; update them in the credentials file")]
    KeysRejected { profile: String, code: String },

    #[error(
        "the temporary keys of profile '{profile}' have expired: refresh its aws_session_token"
    )]
    KeysExpired { profile: String },

    #[error("{operation} failed for profile '{profile}': {message}")]
    Service {
        operation: &'static str,
        profile: String,
        message: String,
    },

    #[error("{operation} failed because this machine's clock is {offset} {direction} AWS's: correct the clock (for example, enable NTP), then try again")]
    ClockSkew {
        operation: &'static str,
        offset: String,
        direction: &'static str,
    },

    #[error("could not reach {service} at {endpoint}: {detail}. Check the network, HTTPS_PROXY, and {hint}")]
    Unreachable {
        service: &'static str,
        endpoint: String,
        detail: String,
        /// The setting that chose the endpoint, from [`crate::aws::Settings::endpoint_hint`].
        hint: String,
    },

    #[error("could not read AWS_CA_BUNDLE {path}: {source}")]
    CaBundle {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cache {path}: {message}")]
    Cache { path: PathBuf, message: String },

    #[error("{0}")]
    YubiKey(#[from] ykoath::Error),

    #[error("could not run {program}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Returns the process exit status for this error: 127 and 126 for a
    /// program that is not found or not executable, as shells do, and 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
            _ => 1,
        }
    }
}
