//! The STS calls of a chain: GetSessionToken with an MFA code, and AssumeRole.

use crate::aws::{Context, Service};
use crate::aws_error::classify;
use crate::chain::RoleStep;
use crate::credentials::{Credentials, Secret};
use crate::error::Error;

/// An MFA serial and the one-time password to send with it.
#[derive(Debug, Clone, Copy)]
pub struct MfaCode<'a> {
    pub serial: &'a str,
    pub code: &'a str,
}

/// Calls GetSessionToken with the long-term keys of `profile`.
pub fn get_session_token(
    context: &Context,
    profile: &str,
    keys: &Credentials,
    mfa: MfaCode<'_>,
    duration_seconds: i32,
) -> Result<Credentials, Error> {
    tracing::info!(
        "calling STS GetSessionToken for profile '{profile}' with {} and MFA serial {} ({}s)",
        keys.access_key_id,
        mfa.serial,
        duration_seconds
    );

    let request = context
        .sts(keys)
        .get_session_token()
        .serial_number(mfa.serial)
        .token_code(mfa.code)
        .duration_seconds(duration_seconds)
        .send();
    let output = context.block_on(request).map_err(|error| {
        classify(
            context,
            Service::Sts,
            "GetSessionToken",
            profile,
            Some(mfa.serial),
            error,
        )
    })?;

    convert(output.credentials(), "GetSessionToken", profile)
}

/// Calls AssumeRole for `role`, signed with `credentials` of `profile`.
pub fn assume_role(
    context: &Context,
    profile: &str,
    credentials: &Credentials,
    role: &RoleStep,
    mfa: Option<MfaCode<'_>>,
    duration_seconds: i32,
) -> Result<Credentials, Error> {
    tracing::info!(
        "calling STS AssumeRole for {} as '{}' with {}{}{} ({}s)",
        role.role_arn,
        role.session_name,
        credentials.access_key_id,
        if role.external_id.is_some() {
            ", an external id"
        } else {
            ""
        },
        mfa.map(|mfa| format!(" and MFA serial {}", mfa.serial))
            .unwrap_or_default(),
        duration_seconds
    );

    let request = context
        .sts(credentials)
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(&role.session_name)
        .set_external_id(role.external_id.clone())
        .set_serial_number(mfa.map(|mfa| mfa.serial.to_owned()))
        .set_token_code(mfa.map(|mfa| mfa.code.to_owned()))
        .duration_seconds(duration_seconds)
        .send();
    let output = context.block_on(request).map_err(|error| {
        classify(
            context,
            Service::Sts,
            "AssumeRole",
            profile,
            mfa.map(|mfa| mfa.serial),
            error,
        )
    })?;

    convert(output.credentials(), "AssumeRole", &role.profile)
}

fn convert(
    credentials: Option<&aws_sdk_sts::types::Credentials>,
    operation: &'static str,
    profile: &str,
) -> Result<Credentials, Error> {
    let credentials = credentials.ok_or_else(|| Error::Service {
        operation,
        profile: profile.to_owned(),
        message: "the response carried no credentials".to_owned(),
    })?;

    Ok(Credentials {
        access_key_id: credentials.access_key_id().to_owned(),
        secret_access_key: Secret::new(credentials.secret_access_key()),
        session_token: Some(Secret::new(credentials.session_token())),
        expiration: Some(credentials.expiration().secs()),
    })
}
