//! The byte channel to a card, APDU counting, and response chaining.

use crate::apdu::{Command, Response, StatusWord};
use crate::Error;

/// Instruction that fetches the next part of a chained OATH response.
pub const INS_SEND_REMAINING: u8 = 0xA5;

/// Upper bound on chained response parts, so that a card that keeps
/// returning 61xx cannot loop forever. By estimate, CALCULATE ALL on 64
/// credentials with 64-byte names returns about 5 KB, or about 20 parts.
pub const MAX_CHAINED_PARTS: usize = 1024;

/// A channel that sends one raw command APDU and returns the raw response
/// APDU, status word included.
pub trait Transport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).transmit(command)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).transmit(command)
    }
}

/// A transport wrapper that counts the APDUs sent through it.
#[derive(Debug)]
pub struct CountingTransport<T> {
    inner: T,
    count: u64,
}

impl<T> CountingTransport<T> {
    pub fn new(inner: T) -> Self {
        CountingTransport { inner, count: 0 }
    }

    /// Number of APDUs sent so far, including SEND REMAINING.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Transport> Transport for CountingTransport<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.count += 1;
        self.inner.transmit(command)
    }
}

/// Sends `command` and follows SW 61xx with SEND REMAINING (`00 A5 00 00`)
/// until the card ends with another status word.
///
/// Returns the concatenated data and the final status word. `name` labels
/// errors and logs.
pub fn transmit_chained<T: Transport + ?Sized>(
    transport: &mut T,
    name: &'static str,
    command: &Command,
) -> Result<Response, Error> {
    let bytes = command.to_bytes()?;
    tracing::trace!(command = name, length = bytes.len(), "sending APDU");
    let mut response = Response::parse(name, &transport.transmit(&bytes)?)?;

    let mut parts = 1;
    while response.sw.more_data().is_some() {
        if parts >= MAX_CHAINED_PARTS {
            return Err(Error::malformed(
                name,
                format!("the card still reports more data after {parts} chained parts"),
            ));
        }
        let send_remaining = Command::new(INS_SEND_REMAINING, 0x00, 0x00).to_short_bytes()?;
        let next = Response::parse(name, &transport.transmit(&send_remaining)?)?;
        response.data.extend_from_slice(&next.data);
        response.sw = next.sw;
        parts += 1;
    }
    tracing::trace!(command = name, sw = %response.sw, parts, "received response");
    Ok(response)
}

/// Like [`transmit_chained`], but any status word other than 9000 is an
/// [`Error::Status`].
pub fn transmit_ok<T: Transport + ?Sized>(
    transport: &mut T,
    name: &'static str,
    command: &Command,
) -> Result<Vec<u8>, Error> {
    let response = transmit_chained(transport, name, command)?;
    if response.sw != StatusWord::SUCCESS {
        return Err(Error::Status {
            command: name,
            sw: response.sw,
        });
    }
    Ok(response.data)
}
