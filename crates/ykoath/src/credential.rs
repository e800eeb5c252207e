//! OATH data types, one-time password formatting and the key derivation
//! and HMAC helpers that the session uses.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::Error;

/// Default TOTP period in seconds.
pub const DEFAULT_PERIOD: u64 = 30;
/// The OATH applet pads shorter HMAC keys to this length (as ykman does).
pub const HMAC_MINIMUM_KEY_SIZE: usize = 14;
/// Maximum length of a credential name on the YubiKey, in bytes.
pub const MAX_NAME_LENGTH: usize = 64;
/// PBKDF2 iteration count that ykman and Yubico Authenticator use.
const PBKDF2_ITERATIONS: u32 = 1000;

/// Hash algorithm of a credential's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Returns the algorithm code, the low nibble of the type byte.
    pub fn code(self) -> u8 {
        match self {
            Algorithm::Sha1 => 0x01,
            Algorithm::Sha256 => 0x02,
            Algorithm::Sha512 => 0x03,
        }
    }

    pub fn from_code(code: u8) -> Option<Algorithm> {
        match code {
            0x01 => Some(Algorithm::Sha1),
            0x02 => Some(Algorithm::Sha256),
            0x03 => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// HMAC block size in bytes: a longer key is hashed first (RFC 2104).
    pub fn block_size(self) -> usize {
        match self {
            Algorithm::Sha1 | Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha1 => Sha1::digest(data).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data).to_vec(),
            Algorithm::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha1 => hmac_bytes::<Hmac<Sha1>>(key, message),
            Algorithm::Sha256 => hmac_bytes::<Hmac<Sha256>>(key, message),
            Algorithm::Sha512 => hmac_bytes::<Hmac<Sha512>>(key, message),
        }
    }

    /// Checks an HMAC tag in constant time.
    pub fn verify_hmac(self, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        match self {
            Algorithm::Sha1 => hmac_verify::<Hmac<Sha1>>(key, message, tag),
            Algorithm::Sha256 => hmac_verify::<Hmac<Sha256>>(key, message, tag),
            Algorithm::Sha512 => hmac_verify::<Hmac<Sha512>>(key, message, tag),
        }
    }
}

fn hmac_bytes<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_verify<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.verify_slice(tag).is_ok()
}

/// OATH credential type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Counter based (RFC 4226).
    Hotp,
    /// Time based (RFC 6238).
    Totp,
}

impl Kind {
    /// Returns the type code, the high nibble of the type byte.
    pub fn code(self) -> u8 {
        match self {
            Kind::Hotp => 0x10,
            Kind::Totp => 0x20,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        match code {
            0x10 => Some(Kind::Hotp),
            0x20 => Some(Kind::Totp),
            _ => None,
        }
    }
}

/// Firmware version of the OATH applet, from the SELECT response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A credential as LIST reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub name: String,
    pub kind: Kind,
    pub algorithm: Algorithm,
}

impl CredentialInfo {
    /// TOTP period in seconds, from the name's `PERIOD/` prefix (30 without one).
    /// Returns `None` for HOTP credentials.
    pub fn period(&self) -> Option<u64> {
        (self.kind == Kind::Totp).then(|| period_from_name(&self.name))
    }
}

/// Returns the TOTP period that a credential name encodes.
///
/// ykman stores a TOTP credential with a period other than 30 seconds as
/// `PERIOD/ISSUER:ACCOUNT`. A missing, zero or non-numeric prefix means 30.
pub fn period_from_name(name: &str) -> u64 {
    let Some((prefix, _)) = name.split_once('/') else {
        return DEFAULT_PERIOD;
    };
    if prefix.is_empty() || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
        return DEFAULT_PERIOD;
    }
    match prefix.parse::<u64>() {
        Ok(period) if period > 0 => period,
        _ => DEFAULT_PERIOD,
    }
}

/// A credential to store with PUT.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    /// The raw shared secret (already decoded from base32).
    pub secret: Vec<u8>,
    pub kind: Kind,
    pub algorithm: Algorithm,
    /// Number of digits of each code, 6 to 8.
    pub digits: u8,
    /// Whether each code needs a touch of the YubiKey.
    pub touch: bool,
    /// Initial moving factor of an HOTP credential; must be 0 for TOTP.
    pub counter: u32,
}

impl Credential {
    /// Creates a TOTP credential with SHA-1, 6 digits and no touch, as most services issue.
    pub fn totp(name: impl Into<String>, secret: Vec<u8>) -> Self {
        Credential {
            name: name.into(),
            secret,
            kind: Kind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            touch: false,
            counter: 0,
        }
    }

    /// Returns the key the applet stores: hashed when longer than the hash's block
    /// size, then zero-padded to 14 bytes, as ykman does.
    pub fn applet_key(&self) -> Vec<u8> {
        let mut key = if self.secret.len() > self.algorithm.block_size() {
            self.algorithm.hash(&self.secret)
        } else {
            self.secret.clone()
        };
        if key.len() < HMAC_MINIMUM_KEY_SIZE {
            key.resize(HMAC_MINIMUM_KEY_SIZE, 0);
        }
        key
    }
}

/// Prints everything but the secret, so that credentials can be logged.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("kind", &self.kind)
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("touch", &self.touch)
            .field("counter", &self.counter)
            .finish()
    }
}

/// A one-time password; `Display` prints it with leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    value: u32,
    digits: u8,
}

impl Code {
    /// Builds a code from a truncated response: 1 byte of digits, then the
    /// 4 bytes of the RFC 4226 dynamic truncation, whose top bit is masked.
    pub fn from_truncated(command: &'static str, response: &[u8]) -> Result<Code, Error> {
        let [digits, a, b, c, d] = response else {
            return Err(Error::malformed(
                command,
                format!("truncated response of {} bytes, expected 5", response.len()),
            ));
        };
        // 10 digits is the most a 31-bit value can fill.
        if !(1..=10).contains(digits) {
            return Err(Error::malformed(
                command,
                format!("truncated response asks for {digits} digits, expected 1 to 10"),
            ));
        }
        let truncated = u32::from_be_bytes([*a, *b, *c, *d]) & 0x7FFF_FFFF;
        let value = (u64::from(truncated) % 10u64.pow(u32::from(*digits))) as u32;
        Ok(Code {
            value,
            digits: *digits,
        })
    }

    pub fn value(&self) -> u32 {
        self.value
    }

    pub fn digits(&self) -> u8 {
        self.digits
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:0width$}",
            self.value,
            width = usize::from(self.digits)
        )
    }
}

/// Derives the 16-byte OATH access key from a password, as ykman does:
/// PBKDF2-HMAC-SHA1 over the UTF-8 password with the applet's salt
/// (tag 0x71 of the SELECT response) and 1000 iterations.
pub fn derive_key(password: &str, salt: &[u8]) -> [u8; 16] {
    let mut key = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, PBKDF2_ITERATIONS, &mut key);
    key
}

/// Encodes a TOTP time step as the 8-byte big-endian challenge (RFC 6238).
pub fn totp_challenge(time_step: u64) -> [u8; 8] {
    time_step.to_be_bytes()
}

/// Computes the RFC 6238 time step of `unix_seconds` for a period in seconds.
///
/// # Panics
///
/// Panics if `period` is 0.
pub fn time_step(unix_seconds: u64, period: u64) -> u64 {
    assert!(period > 0, "a TOTP period must be at least 1 second");
    unix_seconds / period
}

/// Computes the device id that ykman and Yubico Authenticator show for an applet:
/// the first 16 bytes of SHA-256 of the salt, base64 without padding.
pub fn device_id(salt: &[u8]) -> String {
    base64_unpadded(&Sha256::digest(salt)[..16])
}

fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut output = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        // A chunk of n bytes yields n + 1 characters of 6 bits each.
        for index in 0..=chunk.len() {
            let shift = 18 - 6 * index;
            output.push(char::from(ALPHABET[((bits >> shift) & 0x3F) as usize]));
        }
    }
    output
}
