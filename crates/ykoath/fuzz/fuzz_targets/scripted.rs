//! A transport that returns, for each command APDU, the next response cut from the fuzz
//! input, so that the session's parsers (and response chaining) see arbitrary card data.

use ykoath::{Error, Transport};

/// A SELECT response of an applet without a password: version 5.4.3 and an 8-byte salt.
// The select target, which fuzzes SELECT itself, does not use it.
#[allow(dead_code)]
pub const SELECT_OK: &[u8] = &[
    0x79, 0x03, 0x05, 0x04, 0x03, 0x71, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00,
];

/// Responses to return in order. Each is a 1-byte length, then that many bytes (fewer at
/// the end of the input); the input's first byte is the first length.
pub struct Scripted<'a> {
    prefix: Option<&'static [u8]>,
    data: &'a [u8],
}

impl<'a> Scripted<'a> {
    /// Returns `prefix` for the first command (e.g. [`SELECT_OK`]) when it is given.
    pub fn new(prefix: Option<&'static [u8]>, data: &'a [u8]) -> Self {
        Scripted { prefix, data }
    }
}

impl Transport for Scripted<'_> {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, Error> {
        if let Some(prefix) = self.prefix.take() {
            return Ok(prefix.to_vec());
        }
        let Some((&length, rest)) = self.data.split_first() else {
            return Err(Error::Transport("the script has no more responses".into()));
        };
        let length = usize::from(length).min(rest.len());
        let (response, rest) = rest.split_at(length);
        self.data = rest;
        Ok(response.to_vec())
    }
}
