//! The YubiKey OATH (YKOATH) applet protocol.
//!
//! Layers, from the bottom: [`apdu`] encodes commands and splits responses,
//! [`tlv`] parses the applet's TLV data, [`transport`] moves raw APDUs and
//! follows response chaining, [`oath`] speaks the applet's instructions,
//! [`pcsc`] (feature `pcsc`, on by default) reaches cards through pcscd, and
//! [`find`] picks the reader whose card stores a credential.
//!
//! The crate does no terminal I/O: a caller asks the user for a password
//! and prints touch prompts itself.

pub mod apdu;
pub mod credential;
mod error;
pub mod find;
pub mod oath;
#[cfg(feature = "pcsc")]
pub mod pcsc;
pub mod tlv;
pub mod transport;

pub use apdu::StatusWord;
pub use credential::{
    derive_key, device_id, period_from_name, time_step, totp_challenge, Algorithm, Code,
    Credential, CredentialInfo, Kind, Version, DEFAULT_PERIOD,
};
pub use error::{Contents, Error, ReaderContents};
pub use find::{find_credential, Connector, LockedApplet};
#[cfg(feature = "pcsc")]
pub use find::{open_for_credential, open_for_credential_with};
pub use oath::{CalculateAllResult, OathSession, TOUCH_NOTICE_DELAY};
#[cfg(feature = "pcsc")]
pub use pcsc::PcscTransport;
pub use transport::{CountingTransport, Transport};
