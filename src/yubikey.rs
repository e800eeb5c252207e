//! One-time passwords from a YubiKey's OATH applet.

use crate::error::Error;
use crate::otp::OtpSource;

pub struct YubiKey {
    reader: Option<String>,
}

impl YubiKey {
    pub fn new(reader: Option<String>) -> YubiKey {
        YubiKey { reader }
    }
}

impl OtpSource for YubiKey {
    fn code(&mut self, _serial: &str, _step: u64) -> Result<String, Error> {
        Err(Error::Other(format!(
            "YubiKey support is being built (reader {:?})",
            self.reader
        )))
    }
}
