//! One-time passwords for AWS MFA serials from a YubiKey's OATH applet.
//!
//! The OATH credential of a serial is named as the original awsu named it,
//! so that keys it programmed keep working: the account, then everything
//! after `mfa/` in the serial's resource, IAM path included.
//! `arn:aws:iam::123456789012:mfa/alice` becomes `aws/iam/123456789012:alice`,
//! and `arn:aws:iam::123456789012:mfa/team/alice` becomes
//! `aws/iam/123456789012:team/alice`.

use ykoath::{LockedApplet, OathSession, Transport};

use crate::error::Error;
use crate::otp::OtpSource;

/// Environment variable with the OATH applet's password, for automation.
const PASSWORD_VARIABLE: &str = "AWSU_OATH_PASSWORD";

/// Returns the OATH credential name for an MFA serial (see the module docs).
pub fn credential_name(serial: &str) -> Result<String, Error> {
    let invalid = |reason: &str| {
        Error::Other(format!(
            "invalid MFA serial '{serial}': {reason}; expected an ARN such as arn:aws:iam::123456789012:mfa/NAME"
        ))
    };

    let parts: Vec<&str> = serial.splitn(6, ':').collect();
    let [prefix, _partition, service, _region, account, resource] = parts[..] else {
        return Err(invalid("not an ARN"));
    };
    if prefix != "arn" || service != "iam" {
        return Err(invalid("not an IAM ARN"));
    }
    if account.len() != 12 || !account.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(invalid("the account is not 12 digits"));
    }
    let Some(name) = resource
        .strip_prefix("mfa/")
        .filter(|name| !name.is_empty())
    else {
        return Err(invalid("the resource does not start with mfa/"));
    };

    Ok(format!("aws/iam/{account}:{name}"))
}

/// A YubiKey found by the credential it holds, optionally in a reader whose
/// name contains a filter (`--reader`).
pub struct YubiKey {
    reader_filter: Option<String>,
}

impl YubiKey {
    pub fn new(reader_filter: Option<String>) -> YubiKey {
        YubiKey { reader_filter }
    }

    /// Opens the applet that holds the credential of `serial`, unlocked.
    pub fn open(
        &self,
        serial: &str,
    ) -> Result<(String, String, OathSession<impl Transport + Send>), Error> {
        let name = credential_name(serial)?;

        // The search can only return the crate's errors, so a failure to get a
        // password is kept here and reported in awsu's own words.
        let mut password_error = None;
        let opened = ykoath::open_for_credential_with(
            self.reader_filter.as_deref(),
            &name,
            |locked: &LockedApplet<'_>| match password_key(locked.reader, locked.salt) {
                Ok(key) => Ok(Some(key)),
                Err(error) => {
                    password_error = Some(error);
                    Err(ykoath::Error::AuthRequired)
                }
            },
        );
        if let Some(error) = password_error {
            return Err(error);
        }
        let (reader, mut session) = opened?;
        tracing::debug!("using the YubiKey in reader '{reader}' for {name}");

        unlock(&mut session, &reader)?;
        Ok((reader, name, session))
    }
}

impl OtpSource for YubiKey {
    /// Computes the code on the card. The card work runs on its own thread,
    /// because a card that never responds would otherwise block awsu forever.
    fn code(&mut self, serial: &str, step: u64) -> Result<String, Error> {
        let timeout = card_timeout();
        let reader_filter = self.reader_filter.clone();
        let serial_owned = serial.to_owned();
        let (sender, receiver) = std::sync::mpsc::channel();

        std::thread::spawn(move || {
            let yubikey = YubiKey::new(reader_filter);
            let result = yubikey
                .open(&serial_owned)
                .and_then(|(_reader, name, mut session)| {
                    let code = session.calculate_totp_with_notice(&name, step, || {
                        crate::terminal::notice("Touch your YubiKey...");
                    })?;
                    tracing::debug!(
                        "computed the one-time password for {name} with {} APDUs",
                        session.apdu_count()
                    );
                    Ok(code.to_string())
                });
            // The receiver is dropped only after a timeout, when the code is no longer needed.
            let _ = sender.send(result);
        });

        match receiver.recv_timeout(timeout) {
            Ok(result) => result,
            Err(_) => Err(Error::Other(format!(
                "the YubiKey did not respond within {}: remove and re-insert it, then try again",
                crate::duration::format(timeout)
            ))),
        }
    }
}

/// Returns the bound on card work: AWSU_CARD_TIMEOUT, else 30 s, which
/// leaves time for a touch (a YubiKey waits 15 s for one).
fn card_timeout() -> std::time::Duration {
    std::env::var("AWSU_CARD_TIMEOUT")
        .ok()
        .and_then(|text| crate::duration::parse(&text).ok())
        .unwrap_or(std::time::Duration::from_secs(30))
}

/// Validates the applet's password if it has one.
pub fn unlock<T: Transport>(session: &mut OathSession<T>, reader: &str) -> Result<(), Error> {
    if !session.needs_validation() {
        return Ok(());
    }
    let key = password_key(reader, session.salt())?;
    match session.validate(&key) {
        Err(ykoath::Error::WrongPassword) if std::env::var_os(PASSWORD_VARIABLE).is_some() => {
            Err(Error::Other(format!(
                "wrong OATH password for the YubiKey in '{reader}': correct {PASSWORD_VARIABLE}, or unset it to be asked"
            )))
        }
        result => Ok(result?),
    }
}

/// Derives the applet's access key from AWSU_OATH_PASSWORD, or from a
/// password typed at the terminal.
fn password_key(reader: &str, salt: &[u8]) -> Result<[u8; 16], Error> {
    let password = match std::env::var(PASSWORD_VARIABLE) {
        Ok(password) => password,
        Err(_) => crate::terminal::read_secret(&format!(
            "Enter the OATH password of the YubiKey in '{reader}': "
        ))
        .map_err(|error| {
            crate::terminal::notice("");
            Error::Other(format!(
                "the YubiKey in '{reader}' needs its OATH password, and none was entered ({error}): \
                 type it at the prompt, or set {PASSWORD_VARIABLE}"
            ))
        })?,
    };
    Ok(ykoath::derive_key(&password, salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_follows_original_scheme() {
        assert_eq!(
            credential_name("arn:aws:iam::123456789012:mfa/alice").unwrap(),
            "aws/iam/123456789012:alice"
        );
    }

    #[test]
    fn name_keeps_iam_path() {
        assert_eq!(
            credential_name("arn:aws:iam::123456789012:mfa/team/alice").unwrap(),
            "aws/iam/123456789012:team/alice"
        );
    }

    #[test]
    fn name_ignores_partition() {
        assert_eq!(
            credential_name("arn:aws-us-gov:iam::123456789012:mfa/alice").unwrap(),
            "aws/iam/123456789012:alice"
        );
    }

    #[test]
    fn name_rejects_non_mfa_arns() {
        for serial in [
            "",
            "GAHT12345678",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sts::123456789012:mfa/alice",
            "arn:aws:iam::1234:mfa/alice",
            "arn:aws:iam::123456789012:mfa/",
        ] {
            assert!(credential_name(serial).is_err(), "{serial:?} was accepted");
        }
    }
}
