//! The STS calls of a chain: GetSessionToken with an MFA code, and AssumeRole.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::aws::{Context, Service};
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
    let output = context
        .block_on(request)
        .map_err(|error| classify(context, "GetSessionToken", profile, Some(mfa.serial), error))?;

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
    let credentials = credentials.ok_or_else(|| Error::Sts {
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

/// Converts an SDK error into one that tells the user what to do. Auth failures from some
/// servers arrive unparsed (no error code), so the raw XML body is read too.
fn classify<E>(
    context: &Context,
    operation: &'static str,
    profile: &str,
    serial: Option<&str>,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(offset) = clock_offset(&error) {
        return Error::ClockSkew {
            operation,
            offset: crate::duration::format(std::time::Duration::from_secs(offset.unsigned_abs())),
            direction: if offset > 0 { "behind" } else { "ahead of" },
        };
    }

    let (code, message) = match &error {
        SdkError::ServiceError(context_error) => {
            let service_error = context_error.err();
            let raw_body = context_error
                .raw()
                .body()
                .bytes()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            (
                service_error
                    .code()
                    .map(str::to_owned)
                    .or_else(|| xml_element(&raw_body, "Code")),
                service_error
                    .message()
                    .map(str::to_owned)
                    .or_else(|| xml_element(&raw_body, "Message")),
            )
        }
        SdkError::ResponseError(context_error) => {
            let raw_body = context_error
                .raw()
                .body()
                .bytes()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            (
                xml_element(&raw_body, "Code"),
                xml_element(&raw_body, "Message"),
            )
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return Error::Unreachable {
                service: Service::Sts.env_name(),
                endpoint: context.settings.endpoint_or_default(Service::Sts),
                detail: match &error {
                    SdkError::TimeoutError(_) => "timed out".to_owned(),
                    _ => root_cause(&error),
                },
            };
        }
        _ => (None, None),
    };
    let code = code.unwrap_or_default();
    let message = message.unwrap_or_else(|| match error.raw_response() {
        Some(response) => format!(
            "HTTP status {} without an AWS error in the response; check AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS",
            response.status().as_u16()
        ),
        None => root_cause(&error),
    });
    tracing::debug!("{operation} failed: {code}: {message}");

    match code.as_str() {
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" => {
            Error::KeysRejected {
                profile: profile.to_owned(),
                code,
            }
        }
        "ExpiredToken" | "ExpiredTokenException" => Error::KeysExpired {
            profile: profile.to_owned(),
        },
        "AccessDenied" if message.contains("MultiFactorAuthentication") => Error::CodeRejected {
            serial: serial.unwrap_or("(none)").to_owned(),
        },
        _ => Error::Sts {
            operation,
            profile: profile.to_owned(),
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
    }
}

/// Returns the innermost cause of a failed request, e.g. "Connection refused
/// (os error 111)", which is what a user can act on.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if text.is_empty() {
        "timed out".to_owned()
    } else {
        text
    }
}

/// Offsets up to this many seconds between the local clock and AWS's are
/// accepted by SigV4 (AWS allows 5 minutes), so they are not reported.
const CLOCK_SKEW_LIMIT_SECONDS: i64 = 300;

/// Returns AWS's clock minus the local clock, in seconds, from the Date
/// header of an error response, when the difference would break signing.
fn clock_offset<E>(error: &SdkError<E, HttpResponse>) -> Option<i64> {
    let date = error.raw_response()?.headers().get("date")?;
    let server =
        aws_smithy_types::DateTime::from_str(date, aws_smithy_types::date_time::Format::HttpDate)
            .ok()?;
    let offset = server.secs() - crate::credentials::unix_seconds(std::time::SystemTime::now());
    (offset.abs() > CLOCK_SKEW_LIMIT_SECONDS).then_some(offset)
}

/// Extracts the text of the first `<name>` element of an XML error body.
fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(body[start..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_element_reads_error_body() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                    <Message>MultiFactorAuthentication failed</Message></Error></ErrorResponse>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("MultiFactorAuthentication failed")
        );
        assert_eq!(xml_element(body, "Missing"), None);
        assert_eq!(xml_element("<Code>unterminated", "Code"), None);
    }
}
