//! A scripted fake card shared by the integration tests.

#![allow(dead_code)]

use std::collections::VecDeque;

use ykoath::{Error, Transport};

/// Parses hex with optional spaces, e.g. `"00 A4 04 00"`.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

type Handler = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

enum Step {
    /// Assert the exact command and reply with a canned response.
    Exact { command: Vec<u8>, response: Vec<u8> },
    /// Let a closure check the command and build the response.
    Handler(Handler),
}

/// Replays a script of APDUs, asserting each command; when dropped outside a
/// panic, asserts that the whole script was used.
pub struct ScriptedTransport {
    steps: VecDeque<Step>,
    sent: usize,
}

impl ScriptedTransport {
    pub fn new() -> Self {
        ScriptedTransport {
            steps: VecDeque::new(),
            sent: 0,
        }
    }

    pub fn expect(mut self, command: &str, response: &str) -> Self {
        self.steps.push_back(Step::Exact {
            command: hex(command),
            response: hex(response),
        });
        self
    }

    pub fn expect_bytes(mut self, command: Vec<u8>, response: Vec<u8>) -> Self {
        self.steps.push_back(Step::Exact { command, response });
        self
    }

    pub fn handle(mut self, handler: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static) -> Self {
        self.steps.push_back(Step::Handler(Box::new(handler)));
        self
    }

    pub fn remaining(&self) -> usize {
        self.steps.len()
    }
}

impl Transport for ScriptedTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, Error> {
        self.sent += 1;
        let step = self.steps.pop_front().unwrap_or_else(|| {
            panic!(
                "APDU {} is not in the script: {}",
                self.sent,
                to_hex(command)
            )
        });
        match step {
            Step::Exact {
                command: expected,
                response,
            } => {
                assert_eq!(
                    to_hex(command),
                    to_hex(&expected),
                    "APDU {} differs from the script",
                    self.sent
                );
                Ok(response)
            }
            Step::Handler(mut handler) => Ok(handler(command)),
        }
    }
}

impl std::fmt::Debug for ScriptedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScriptedTransport({} steps left)", self.steps.len())
    }
}

impl Drop for ScriptedTransport {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(
                self.steps.len(),
                0,
                "{} scripted APDUs were never sent",
                self.steps.len()
            );
        }
    }
}

/// SELECT command of the OATH applet.
pub const SELECT: &str = "00 A4 04 00 07 A0 00 00 05 27 21 01";
/// SELECT response of an applet without a password: version 5.4.3, salt 01..08.
pub const SELECT_OPEN: &str = "79 03 05 04 03 71 08 01 02 03 04 05 06 07 08 90 00";
/// SELECT response of a password-protected applet with challenge A1..A8, SHA-1.
pub const SELECT_LOCKED: &str =
    "79 03 05 04 03 71 08 01 02 03 04 05 06 07 08 74 08 A1 A2 A3 A4 A5 A6 A7 A8 7B 01 01 90 00";

/// Starts a script with a SELECT of an open applet.
pub fn selected() -> ScriptedTransport {
    ScriptedTransport::new().expect(SELECT, SELECT_OPEN)
}

/// A transport that returns the same bytes for every command, for fuzzing parsers.
#[derive(Debug)]
pub struct ReplayTransport(pub Vec<u8>);

impl Transport for ReplayTransport {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.0.clone())
    }
}
