//! The IAM calls that manage virtual MFA devices, behind a trait so that
//! register's undo logic can be tested with a fake. Also the mapping of SDK
//! errors to awsu's, for IAM and for the STS calls that sts.rs does not make.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::aws::{Context, Service};
use crate::credentials::{Credentials, Secret};
use crate::error::Error;

/// A virtual MFA device as CreateVirtualMFADevice returned it.
pub struct NewDevice {
    /// The device's serial number (its ARN).
    pub serial: String,
    /// The TOTP seed as base32 text.
    pub seed: Secret,
}

/// The IAM operations on MFA devices that awsu uses.
pub trait MfaDevices {
    fn create_virtual_mfa_device(&self, name: &str, path: Option<&str>)
        -> Result<NewDevice, Error>;

    /// Assigns the device to `user`, proving possession with two consecutive codes.
    fn enable_mfa_device(&self, user: &str, serial: &str, codes: [&str; 2]) -> Result<(), Error>;

    /// Lists the serial numbers of the MFA devices assigned to `user`.
    fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, Error>;

    fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), Error>;

    fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), Error>;
}

/// IAM, called with the credentials of a profile.
pub struct Iam<'a> {
    context: &'a Context,
    client: aws_sdk_iam::Client,
    profile: String,
}

impl<'a> Iam<'a> {
    pub fn new(context: &'a Context, credentials: &Credentials, profile: &str) -> Iam<'a> {
        Iam {
            context,
            client: context.iam(credentials),
            profile: profile.to_owned(),
        }
    }

    fn error<E>(&self, operation: &'static str, error: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        service_error(self.context, Service::Iam, operation, &self.profile, error)
    }
}

impl MfaDevices for Iam<'_> {
    fn create_virtual_mfa_device(
        &self,
        name: &str,
        path: Option<&str>,
    ) -> Result<NewDevice, Error> {
        tracing::info!(
            "calling IAM CreateVirtualMFADevice for '{name}'{}",
            path.map(|path| format!(" at path {path}"))
                .unwrap_or_default()
        );
        let request = self
            .client
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name)
            .set_path(path.map(str::to_owned))
            .send();
        let output = self
            .context
            .block_on(request)
            .map_err(|error| self.error("CreateVirtualMFADevice", error))?;

        let device = output.virtual_mfa_device();
        let serial = device.map(|device| device.serial_number()).unwrap_or("");
        let seed = device.and_then(|device| device.base32_string_seed());
        match (serial, seed) {
            ("", _) | (_, None) => Err(Error::Sts {
                operation: "CreateVirtualMFADevice",
                profile: self.profile.clone(),
                message: "the response carried no serial number or no seed".to_owned(),
            }),
            (serial, Some(seed)) => Ok(NewDevice {
                serial: serial.to_owned(),
                // The SDK has already decoded the blob's base64, leaving the base32 text.
                seed: Secret::new(String::from_utf8_lossy(seed.as_ref()).into_owned()),
            }),
        }
    }

    fn enable_mfa_device(&self, user: &str, serial: &str, codes: [&str; 2]) -> Result<(), Error> {
        tracing::info!("calling IAM EnableMFADevice for user '{user}' and {serial}");
        let request = self
            .client
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(codes[0])
            .authentication_code2(codes[1])
            .send();
        self.context
            .block_on(request)
            .map_err(|error| self.error("EnableMFADevice", error))?;
        Ok(())
    }

    fn list_mfa_devices(&self, user: &str) -> Result<Vec<String>, Error> {
        tracing::info!("calling IAM ListMFADevices for user '{user}'");
        let mut serials = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let request = self
                .client
                .list_mfa_devices()
                .user_name(user)
                .set_marker(marker.take())
                .send();
            let output = self
                .context
                .block_on(request)
                .map_err(|error| self.error("ListMFADevices", error))?;
            serials.extend(
                output
                    .mfa_devices()
                    .iter()
                    .map(|device| device.serial_number().to_owned()),
            );
            match output.marker() {
                Some(next) if output.is_truncated() => marker = Some(next.to_owned()),
                _ => return Ok(serials),
            }
        }
    }

    fn deactivate_mfa_device(&self, user: &str, serial: &str) -> Result<(), Error> {
        tracing::info!("calling IAM DeactivateMFADevice for user '{user}' and {serial}");
        let request = self
            .client
            .deactivate_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send();
        self.context
            .block_on(request)
            .map_err(|error| self.error("DeactivateMFADevice", error))?;
        Ok(())
    }

    fn delete_virtual_mfa_device(&self, serial: &str) -> Result<(), Error> {
        tracing::info!("calling IAM DeleteVirtualMFADevice for {serial}");
        let request = self
            .client
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send();
        self.context
            .block_on(request)
            .map_err(|error| self.error("DeleteVirtualMFADevice", error))?;
        Ok(())
    }
}

/// Converts an SDK error of `service` into an error with the next step for
/// the user. Auth failures from some servers arrive unparsed (no error
/// code), so the raw XML body is read too.
pub fn service_error<E>(
    context: &Context,
    service: Service,
    operation: &'static str,
    profile: &str,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let raw_body = |response: &HttpResponse| {
        response
            .body()
            .bytes()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .unwrap_or_default()
    };
    let (code, message) = match &error {
        SdkError::ServiceError(context_error) => {
            let body = raw_body(context_error.raw());
            let service_error = context_error.err();
            (
                service_error
                    .code()
                    .map(str::to_owned)
                    .or_else(|| xml_element(&body, "Code")),
                service_error
                    .message()
                    .map(str::to_owned)
                    .or_else(|| xml_element(&body, "Message")),
            )
        }
        SdkError::ResponseError(context_error) => {
            let body = raw_body(context_error.raw());
            (xml_element(&body, "Code"), xml_element(&body, "Message"))
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return Error::Unreachable {
                service: service.env_name(),
                endpoint: context.settings.endpoint_or_default(service),
                detail: DisplayErrorContext(&error).to_string(),
            };
        }
        _ => (None, None),
    };
    let code = code.unwrap_or_default();
    let message = message.unwrap_or_else(|| DisplayErrorContext(&error).to_string());
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
    fn xml_element_reads_iam_error() {
        let body = "<ErrorResponse><Error><Code>EntityAlreadyExists</Code>\
                    <Message>MFADevice entity at the same path and name already exists.</Message>\
                    </Error></ErrorResponse>";
        assert_eq!(
            xml_element(body, "Code").as_deref(),
            Some("EntityAlreadyExists")
        );
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("MFADevice entity at the same path and name already exists.")
        );
        assert_eq!(xml_element(body, "Type"), None);
    }
}
