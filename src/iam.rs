//! The IAM calls that manage virtual MFA devices, behind a trait so that
//! register's undo logic can be tested with a fake. Also the mapping of SDK
//! errors to awsu's, for IAM and for the STS calls that sts.rs does not make.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::aws::{Context, Service};
use crate::aws_error::classify;
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
        classify(
            self.context,
            Service::Iam,
            operation,
            &self.profile,
            None,
            error,
        )
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
            ("", _) | (_, None) => Err(Error::Service {
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
