//! Classification of AWS SDK errors into awsu's errors, shared by the STS
//! and IAM calls.

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::aws::{Context, Service};
use crate::error::Error;

/// Converts an SDK error of `service` into one with the user's next step.
/// `profile` names the keys that signed the call and `serial` the MFA serial
/// sent with it. Auth failures from some servers arrive unparsed
/// (no error code), so the raw XML body is read too.
pub fn classify<E>(
    context: &Context,
    service: Service,
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
                service: service.env_name(),
                endpoint: context.settings.endpoint_or_default(service),
                hint: context.settings.endpoint_hint(service),
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
            "HTTP status {} from {} without an AWS error in the response: check {}",
            response.status().as_u16(),
            context.settings.endpoint_or_default(service),
            context.settings.endpoint_hint(service)
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
        _ => Error::Service {
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
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
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
