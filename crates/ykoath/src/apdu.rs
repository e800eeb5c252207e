//! Command APDU encoding and response APDU parsing (ISO/IEC 7816-4).

use std::fmt;

use crate::Error;

/// Maximum data length of a short command APDU.
pub const SHORT_MAX_DATA: usize = 255;
/// Maximum data length of an extended command APDU.
pub const EXTENDED_MAX_DATA: usize = 65535;

/// A status word (SW1 SW2) at the end of a response APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const SUCCESS: StatusWord = StatusWord(0x9000);
    /// Sent by the OATH applet when a touch was not given in time, and by
    /// other applets when the conditions of use are not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    pub const NO_SUCH_OBJECT: StatusWord = StatusWord(0x6984);
    pub const SECURITY_STATUS_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    pub const NO_SPACE: StatusWord = StatusWord(0x6A84);
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);

    pub fn from_bytes(sw1: u8, sw2: u8) -> Self {
        StatusWord(u16::from_be_bytes([sw1, sw2]))
    }

    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn sw2(self) -> u8 {
        self.0 as u8
    }

    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// Returns the number of bytes still available (0 means 256 or more)
    /// when SW1 is 0x61.
    pub fn more_data(self) -> Option<u8> {
        (self.sw1() == 0x61).then_some(self.sw2())
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A command APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Expected response length (Le). `None` sends no Le field, which is
    /// what ykman sends to the OATH applet.
    pub le: Option<usize>,
}

impl Command {
    pub fn new(ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla: 0x00,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    pub fn with_data(mut self, data: Vec<u8>) -> Self {
        self.data = data;
        self
    }

    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Encodes the command as a short APDU (data up to 255 bytes, Le up to 256).
    pub fn to_short_bytes(&self) -> Result<Vec<u8>, Error> {
        if self.data.len() > SHORT_MAX_DATA {
            return Err(Error::InvalidArgument(format!(
                "command data of {} bytes does not fit a short APDU (maximum {SHORT_MAX_DATA})",
                self.data.len()
            )));
        }
        let mut bytes = Vec::with_capacity(6 + self.data.len());
        bytes.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            bytes.push(self.data.len() as u8);
            bytes.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            match le {
                1..=255 => bytes.push(le as u8),
                // Le 0x00 stands for 256.
                256 => bytes.push(0x00),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "Le of {le} does not fit a short APDU (1 to 256)"
                    )))
                }
            }
        }
        Ok(bytes)
    }

    /// Encodes the command as an extended APDU (data up to 65535 bytes,
    /// Le up to 65536).
    pub fn to_extended_bytes(&self) -> Result<Vec<u8>, Error> {
        if self.data.len() > EXTENDED_MAX_DATA {
            return Err(Error::InvalidArgument(format!(
                "command data of {} bytes does not fit an extended APDU (maximum {EXTENDED_MAX_DATA})",
                self.data.len()
            )));
        }
        let mut bytes = Vec::with_capacity(9 + self.data.len());
        bytes.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            bytes.push(0x00);
            bytes.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // Le 0x0000 stands for 65536.
            let encoded: u16 = match le {
                1..=65535 => le as u16,
                65536 => 0,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "Le of {le} does not fit an extended APDU (1 to 65536)"
                    )))
                }
            };
            // Without a data field, an extended Le starts with its own 0x00 marker.
            if self.data.is_empty() {
                bytes.push(0x00);
            }
            bytes.extend_from_slice(&encoded.to_be_bytes());
        }
        Ok(bytes)
    }

    /// Encodes as a short APDU when the command fits one, else as an extended APDU.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let fits_short = self.data.len() <= SHORT_MAX_DATA && self.le.is_none_or(|le| le <= 256);
        if fits_short {
            self.to_short_bytes()
        } else {
            self.to_extended_bytes()
        }
    }
}

/// A response APDU split into its data and status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    /// Splits a raw response; one shorter than the 2-byte status word is an error.
    pub fn parse(command: &'static str, raw: &[u8]) -> Result<Response, Error> {
        let Some(split) = raw.len().checked_sub(2) else {
            return Err(Error::malformed(
                command,
                format!("{} bytes, shorter than a status word", raw.len()),
            ));
        };
        Ok(Response {
            data: raw[..split].to_vec(),
            sw: StatusWord::from_bytes(raw[split], raw[split + 1]),
        })
    }
}
