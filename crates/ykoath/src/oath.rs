//! A session with the YubiKey OATH applet: one method per instruction.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::apdu::{Command, StatusWord};
use crate::credential::{
    device_id, totp_challenge, Algorithm, Code, Credential, CredentialInfo, Kind, Version,
    MAX_NAME_LENGTH,
};
use crate::transport::{transmit_chained, CountingTransport, Transport};
use crate::{tlv, Error};

/// Application identifier of the OATH applet.
pub const AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x21, 0x01];

/// Instruction bytes of the OATH applet.
pub mod ins {
    pub const PUT: u8 = 0x01;
    pub const DELETE: u8 = 0x02;
    pub const SET_CODE: u8 = 0x03;
    pub const RESET: u8 = 0x04;
    pub const RENAME: u8 = 0x05;
    pub const LIST: u8 = 0xA1;
    pub const CALCULATE: u8 = 0xA2;
    pub const VALIDATE: u8 = 0xA3;
    /// CALCULATE ALL with P1 0x00; SELECT shares the byte with P1 0x04.
    pub const CALCULATE_ALL: u8 = 0xA4;
    pub const SELECT: u8 = 0xA4;
    pub const SEND_REMAINING: u8 = crate::transport::INS_SEND_REMAINING;
}

/// TLV tags of the OATH applet.
pub mod tag {
    pub const NAME: u8 = 0x71;
    pub const NAME_LIST: u8 = 0x72;
    pub const KEY: u8 = 0x73;
    pub const CHALLENGE: u8 = 0x74;
    pub const RESPONSE: u8 = 0x75;
    pub const TRUNCATED: u8 = 0x76;
    pub const HOTP: u8 = 0x77;
    /// Written as a bare tag and property byte, with no length byte.
    pub const PROPERTY: u8 = 0x78;
    pub const VERSION: u8 = 0x79;
    pub const IMF: u8 = 0x7A;
    pub const ALGORITHM: u8 = 0x7B;
    pub const TOUCH: u8 = 0x7C;
}

/// Property byte that makes a credential require touch.
pub const PROPERTY_REQUIRE_TOUCH: u8 = 0x02;

/// How long CALCULATE may take before the card is assumed to wait for a
/// touch. A CALCULATE without touch takes a few milliseconds on a YubiKey 5.
pub const TOUCH_NOTICE_DELAY: Duration = Duration::from_millis(500);

/// The result for one credential of CALCULATE ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalculateAllResult {
    Code(Code),
    /// The credential needs a touch, so it must be calculated on its own.
    Touch,
    /// HOTP credentials are not calculated by CALCULATE ALL, because that
    /// would advance their counters.
    Hotp,
}

/// A selected OATH applet.
///
/// Every method sends its APDUs through the transport at once and keeps no
/// state besides what SELECT returned and whether VALIDATE succeeded.
#[derive(Debug)]
pub struct OathSession<T> {
    transport: CountingTransport<T>,
    version: Version,
    salt: Vec<u8>,
    /// The applet's challenge while a password is set and not yet validated.
    challenge: Option<Vec<u8>>,
    algorithm: Algorithm,
}

impl<T: Transport> OathSession<T> {
    /// Selects the OATH applet and parses its version, salt, and, when a
    /// password is set, challenge and algorithm.
    pub fn select(transport: T) -> Result<Self, Error> {
        let mut session = OathSession {
            transport: CountingTransport::new(transport),
            version: Version {
                major: 0,
                minor: 0,
                patch: 0,
            },
            salt: Vec::new(),
            challenge: None,
            algorithm: Algorithm::Sha1,
        };
        session.reselect()?;
        Ok(session)
    }

    fn reselect(&mut self) -> Result<(), Error> {
        const NAME: &str = "SELECT";
        let command = Command::new(ins::SELECT, 0x04, 0x00).with_data(AID.to_vec());
        let data = self.send(NAME, &command, None)?;

        let mut version = None;
        let mut salt = None;
        let mut challenge = None;
        let mut algorithm = Algorithm::Sha1;
        for item in tlv::parse_all(NAME, &data)? {
            match item.tag {
                tag::VERSION => match item.value {
                    [major, minor, patch] => {
                        version = Some(Version {
                            major: *major,
                            minor: *minor,
                            patch: *patch,
                        })
                    }
                    _ => {
                        return Err(Error::malformed(
                            NAME,
                            format!("version of {} bytes, expected 3", item.value.len()),
                        ))
                    }
                },
                tag::NAME => salt = Some(item.value.to_vec()),
                tag::CHALLENGE => challenge = Some(item.value.to_vec()),
                tag::ALGORITHM => {
                    algorithm = match item.value {
                        [code] => Algorithm::from_code(*code),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        Error::malformed(NAME, format!("unknown algorithm {:02X?}", item.value))
                    })?;
                }
                // Later firmware may add tags; they are not needed here.
                _ => {}
            }
        }

        self.version = version.ok_or_else(|| Error::malformed(NAME, "no version (tag 0x79)"))?;
        self.salt = salt.ok_or_else(|| Error::malformed(NAME, "no salt (tag 0x71)"))?;
        self.challenge = challenge;
        self.algorithm = algorithm;
        tracing::debug!(
            version = %self.version,
            device_id = %self.device_id(),
            locked = self.challenge.is_some(),
            "selected the OATH applet"
        );
        Ok(())
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Returns the applet's salt for [`derive_key`](crate::derive_key).
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// Computes the device id from the salt, as ykman shows it. It changes on RESET.
    pub fn device_id(&self) -> String {
        device_id(&self.salt)
    }

    /// Whether a password is set and [`validate`](Self::validate) must run
    /// before any other instruction.
    pub fn needs_validation(&self) -> bool {
        self.challenge.is_some()
    }

    /// Number of APDUs sent in this session, SELECT and SEND REMAINING included.
    pub fn apdu_count(&self) -> u64 {
        self.transport.count()
    }

    pub fn transport(&self) -> &T {
        self.transport.inner()
    }

    pub fn transport_mut(&mut self) -> &mut T {
        self.transport.inner_mut()
    }

    pub fn into_transport(self) -> T {
        self.transport.into_inner()
    }

    /// Unlocks the applet with the access key from [`derive_key`](crate::derive_key).
    ///
    /// Sends VALIDATE with the HMAC of the applet's challenge and a random
    /// challenge of our own, then checks the applet's HMAC of ours, so that
    /// both sides prove they know the key. Does nothing when no password is set.
    pub fn validate(&mut self, key: &[u8]) -> Result<(), Error> {
        const NAME: &str = "VALIDATE";
        let Some(card_challenge) = self.challenge.clone() else {
            return Ok(());
        };

        let mut own_challenge = [0u8; 8];
        getrandom::getrandom(&mut own_challenge)
            .map_err(|error| Error::Transport(format!("no random challenge: {error}")))?;

        let mut data = Vec::new();
        tlv::push(
            &mut data,
            tag::RESPONSE,
            &self.algorithm.hmac(key, &card_challenge),
        )?;
        tlv::push(&mut data, tag::CHALLENGE, &own_challenge)?;
        let command = Command::new(ins::VALIDATE, 0x00, 0x00).with_data(data);

        let response = transmit_chained(&mut self.transport, NAME, &command)?;
        // The applet rejects a wrong response with 6A80.
        if response.sw == StatusWord::WRONG_DATA {
            return Err(Error::WrongPassword);
        }
        if !response.sw.is_success() {
            return Err(status_error(NAME, response.sw, None));
        }

        let card_response = tlv::expect_single(NAME, &response.data, tag::RESPONSE)?;
        if !self
            .algorithm
            .verify_hmac(key, &own_challenge, card_response)
        {
            tracing::warn!(
                "the applet accepted the key but returned a wrong response to our challenge"
            );
            return Err(Error::WrongPassword);
        }
        self.challenge = None;
        Ok(())
    }

    /// Calculates the truncated one-time password of credential `name` for
    /// `challenge` (8 bytes for TOTP; HOTP ignores it).
    ///
    /// A missing credential is [`Error::NoSuchCredential`]; a touch that is
    /// not given in time is [`Error::TouchTimeout`].
    pub fn calculate(&mut self, name: &str, challenge: &[u8]) -> Result<Code, Error> {
        let command = calculate_command(name, challenge)?;
        let response = transmit_chained(&mut self.transport, CALCULATE, &command);
        parse_calculate_response(name, response)
    }

    /// Calculates the TOTP code of credential `name` for an RFC 6238 time step.
    pub fn calculate_totp(&mut self, name: &str, time_step: u64) -> Result<Code, Error> {
        self.calculate(name, &totp_challenge(time_step))
    }

    /// Lists the credentials on the applet.
    pub fn list(&mut self) -> Result<Vec<CredentialInfo>, Error> {
        const NAME: &str = "LIST";
        let data = self.send(NAME, &Command::new(ins::LIST, 0x00, 0x00), None)?;

        let mut credentials = Vec::new();
        for item in tlv::parse_all(NAME, &data)? {
            if item.tag != tag::NAME_LIST {
                return Err(Error::malformed(
                    NAME,
                    format!("expected tag 0x72, found {:#04X}", item.tag),
                ));
            }
            let Some((&type_byte, name)) = item.value.split_first() else {
                return Err(Error::malformed(NAME, "empty credential entry"));
            };
            let kind = Kind::from_code(type_byte & 0xF0).ok_or_else(|| {
                Error::malformed(
                    NAME,
                    format!("unknown credential type byte {type_byte:#04X}"),
                )
            })?;
            let algorithm = Algorithm::from_code(type_byte & 0x0F).ok_or_else(|| {
                Error::malformed(
                    NAME,
                    format!("unknown algorithm in type byte {type_byte:#04X}"),
                )
            })?;
            credentials.push(CredentialInfo {
                name: String::from_utf8_lossy(name).into_owned(),
                kind,
                algorithm,
            });
        }
        Ok(credentials)
    }

    /// Calculates the codes of all credentials that need no touch for one
    /// challenge, in the order the applet returns them.
    ///
    /// NOTE: the applet uses the same challenge for every TOTP credential.
    /// So the codes of credentials with another period than the challenge's
    /// (see [`CredentialInfo::period`]) are wrong. Calculate those with
    /// [`calculate`](Self::calculate).
    pub fn calculate_all(
        &mut self,
        challenge: &[u8],
    ) -> Result<Vec<(String, CalculateAllResult)>, Error> {
        const NAME: &str = "CALCULATE ALL";
        let mut data = Vec::new();
        tlv::push(&mut data, tag::CHALLENGE, challenge)?;
        // P2 0x01 requests truncated responses.
        let command = Command::new(ins::CALCULATE_ALL, 0x00, 0x01).with_data(data);
        let data = self.send(NAME, &command, None)?;

        let items = tlv::parse_all(NAME, &data)?;
        let mut results = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks(2) {
            let [name_item, result_item] = pair else {
                return Err(Error::malformed(NAME, "a credential name without a result"));
            };
            if name_item.tag != tag::NAME {
                return Err(Error::malformed(
                    NAME,
                    format!(
                        "expected a name (tag 0x71), found tag {:#04X}",
                        name_item.tag
                    ),
                ));
            }
            let result = match result_item.tag {
                tag::TRUNCATED => {
                    CalculateAllResult::Code(Code::from_truncated(NAME, result_item.value)?)
                }
                tag::TOUCH => CalculateAllResult::Touch,
                tag::HOTP => CalculateAllResult::Hotp,
                other => {
                    return Err(Error::malformed(
                        NAME,
                        format!("expected tag 0x76, 0x77 or 0x7C after a name, found {other:#04X}"),
                    ))
                }
            };
            results.push((
                String::from_utf8_lossy(name_item.value).into_owned(),
                result,
            ));
        }
        Ok(results)
    }

    /// Stores a credential, replacing one of the same name.
    pub fn put(&mut self, credential: &Credential) -> Result<(), Error> {
        self.check_credential(credential)?;

        let mut key_value = vec![
            credential.kind.code() | credential.algorithm.code(),
            credential.digits,
        ];
        key_value.extend_from_slice(&credential.applet_key());

        let mut data = Vec::new();
        tlv::push(&mut data, tag::NAME, credential.name.as_bytes())?;
        tlv::push(&mut data, tag::KEY, &key_value)?;
        if credential.touch {
            data.extend_from_slice(&[tag::PROPERTY, PROPERTY_REQUIRE_TOUCH]);
        }
        if credential.counter > 0 {
            tlv::push(&mut data, tag::IMF, &credential.counter.to_be_bytes())?;
        }
        let command = Command::new(ins::PUT, 0x00, 0x00).with_data(data);
        self.send("PUT", &command, Some(&credential.name))?;
        Ok(())
    }

    fn check_credential(&self, credential: &Credential) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidCredential {
            name: credential.name.clone(),
            reason,
        };
        check_name(&credential.name).map_err(invalid)?;
        if !(6..=8).contains(&credential.digits) {
            return Err(invalid(format!(
                "{} digits, expected 6 to 8",
                credential.digits
            )));
        }
        if credential.secret.is_empty() {
            return Err(invalid("the secret is empty".into()));
        }
        if credential.kind == Kind::Totp && credential.counter != 0 {
            return Err(invalid(
                "a TOTP credential has no counter; set it to 0".into(),
            ));
        }
        // Firmware limits as ykman enforces them.
        let touch_minimum = Version {
            major: 4,
            minor: 2,
            patch: 6,
        };
        if credential.touch && self.version < touch_minimum {
            return Err(invalid(format!(
                "touch needs firmware {touch_minimum} or later, this is {}",
                self.version
            )));
        }
        let sha512_minimum = Version {
            major: 4,
            minor: 3,
            patch: 1,
        };
        if credential.algorithm == Algorithm::Sha512 && self.version < sha512_minimum {
            return Err(invalid(format!(
                "SHA-512 needs firmware {sha512_minimum} or later, this is {}",
                self.version
            )));
        }
        Ok(())
    }

    /// Deletes credential `name`.
    pub fn delete(&mut self, name: &str) -> Result<(), Error> {
        let data = tlv::encode(tag::NAME, name.as_bytes())?;
        let command = Command::new(ins::DELETE, 0x00, 0x00).with_data(data);
        self.send("DELETE", &command, Some(name))?;
        Ok(())
    }

    /// Renames credential `old` to `new` (firmware 5.3.1 or later).
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), Error> {
        check_name(new).map_err(|reason| Error::InvalidCredential {
            name: new.to_owned(),
            reason,
        })?;
        let mut data = Vec::new();
        tlv::push(&mut data, tag::NAME, old.as_bytes())?;
        tlv::push(&mut data, tag::NAME, new.as_bytes())?;
        let command = Command::new(ins::RENAME, 0x00, 0x00).with_data(data);
        self.send("RENAME", &command, Some(old))?;
        Ok(())
    }

    /// Deletes every credential and the password, then selects the applet
    /// again, because RESET gives it a new salt.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.send("RESET", &Command::new(ins::RESET, 0xDE, 0xAD), None)?;
        self.reselect()
    }

    /// Sets the access key (from [`derive_key`](crate::derive_key)) that
    /// VALIDATE will require from the next session on.
    pub fn set_code(&mut self, key: &[u8; 16]) -> Result<(), Error> {
        let mut challenge = [0u8; 8];
        getrandom::getrandom(&mut challenge)
            .map_err(|error| Error::Transport(format!("no random challenge: {error}")))?;

        let mut key_value = vec![Kind::Totp.code() | Algorithm::Sha1.code()];
        key_value.extend_from_slice(key);
        let mut data = Vec::new();
        tlv::push(&mut data, tag::KEY, &key_value)?;
        tlv::push(&mut data, tag::CHALLENGE, &challenge)?;
        tlv::push(
            &mut data,
            tag::RESPONSE,
            &Algorithm::Sha1.hmac(key, &challenge),
        )?;
        let command = Command::new(ins::SET_CODE, 0x00, 0x00).with_data(data);
        self.send("SET CODE", &command, None)?;
        Ok(())
    }

    /// Removes the password.
    pub fn clear_code(&mut self) -> Result<(), Error> {
        let data = tlv::encode(tag::KEY, &[])?;
        let command = Command::new(ins::SET_CODE, 0x00, 0x00).with_data(data);
        self.send("SET CODE", &command, None)?;
        Ok(())
    }

    /// Sends a command, follows chaining and turns any status word other
    /// than 9000 into an error. `credential` names the object that 6984 refers to.
    fn send(
        &mut self,
        name: &'static str,
        command: &Command,
        credential: Option<&str>,
    ) -> Result<Vec<u8>, Error> {
        let response = transmit_chained(&mut self.transport, name, command)?;
        if !response.sw.is_success() {
            return Err(status_error(name, response.sw, credential));
        }
        Ok(response.data)
    }
}

impl<T: Transport + Send> OathSession<T> {
    /// Like [`calculate_totp`](Self::calculate_totp), but calls `on_wait`
    /// when the card has not responded after [`TOUCH_NOTICE_DELAY`], which
    /// means that it waits for a touch. Sends no extra APDU.
    pub fn calculate_totp_with_notice(
        &mut self,
        name: &str,
        time_step: u64,
        on_wait: impl FnOnce(),
    ) -> Result<Code, Error> {
        self.calculate_with_notice(
            name,
            &totp_challenge(time_step),
            TOUCH_NOTICE_DELAY,
            on_wait,
        )
    }

    /// Like [`calculate`](Self::calculate), but calls `on_wait` (at most
    /// once, on the calling thread) when the card has not responded after `delay`.
    pub fn calculate_with_notice(
        &mut self,
        name: &str,
        challenge: &[u8],
        delay: Duration,
        on_wait: impl FnOnce(),
    ) -> Result<Code, Error> {
        let command = calculate_command(name, challenge)?;
        let transport = &mut self.transport;

        // The APDU runs on a scoped thread so that this thread can notice the wait.
        let response = std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::channel();
            scope.spawn(move || {
                // The receiver lives until the scope ends, so a send error cannot occur here.
                let _ = sender.send(transmit_chained(transport, CALCULATE, &command));
            });
            match receiver.recv_timeout(delay) {
                Ok(response) => response,
                Err(RecvTimeoutError::Timeout) => {
                    tracing::debug!(
                        credential = name,
                        "CALCULATE is waiting, probably for a touch"
                    );
                    on_wait();
                    receiver.recv().unwrap_or_else(|_| {
                        Err(Error::Transport(
                            "the CALCULATE thread ended without a response".into(),
                        ))
                    })
                }
                Err(RecvTimeoutError::Disconnected) => Err(Error::Transport(
                    "the CALCULATE thread ended without a response".into(),
                )),
            }
        });
        parse_calculate_response(name, response)
    }
}

const CALCULATE: &str = "CALCULATE";

fn calculate_command(name: &str, challenge: &[u8]) -> Result<Command, Error> {
    let mut data = Vec::new();
    tlv::push(&mut data, tag::NAME, name.as_bytes())?;
    tlv::push(&mut data, tag::CHALLENGE, challenge)?;
    // P2 0x01 requests a truncated response.
    Ok(Command::new(ins::CALCULATE, 0x00, 0x01).with_data(data))
}

fn parse_calculate_response(
    name: &str,
    response: Result<crate::apdu::Response, Error>,
) -> Result<Code, Error> {
    let response = response?;
    match response.sw {
        StatusWord::SUCCESS => {}
        StatusWord::CONDITIONS_NOT_SATISFIED => return Err(Error::TouchTimeout),
        sw => return Err(status_error(CALCULATE, sw, Some(name))),
    }
    let truncated = tlv::expect_single(CALCULATE, &response.data, tag::TRUNCATED)?;
    Code::from_truncated(CALCULATE, truncated)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "the name is {} bytes long, the YubiKey stores at most {MAX_NAME_LENGTH}",
            name.len()
        ));
    }
    Ok(())
}

/// Maps a status word other than 9000 to the error a caller can act on.
fn status_error(command: &'static str, sw: StatusWord, credential: Option<&str>) -> Error {
    match (sw, credential) {
        (StatusWord::NO_SUCH_OBJECT, Some(name)) => Error::NoSuchCredential {
            name: name.to_owned(),
        },
        (StatusWord::SECURITY_STATUS_NOT_SATISFIED, _) => Error::AuthRequired,
        (StatusWord::NO_SPACE, _) => Error::NoSpace,
        _ => Error::Status { command, sw },
    }
}
