//! Choosing the reader that stores a credential, with fake readers.

mod common;

use std::collections::HashMap;

use common::{hex, selected, ScriptedTransport, SELECT, SELECT_LOCKED};
use hmac::{Hmac, Mac};
use ykoath::{find_credential, Connector, Contents, Error, LockedApplet};

/// Readers in a fixed order; each has a scripted card, or none (no card).
struct FakeConnector {
    readers: Vec<String>,
    cards: HashMap<String, ScriptedTransport>,
}

impl FakeConnector {
    fn new() -> Self {
        FakeConnector {
            readers: Vec::new(),
            cards: HashMap::new(),
        }
    }

    fn card(mut self, reader: &str, card: ScriptedTransport) -> Self {
        self.readers.push(reader.to_owned());
        self.cards.insert(reader.to_owned(), card);
        self
    }

    fn empty_reader(mut self, reader: &str) -> Self {
        self.readers.push(reader.to_owned());
        self
    }
}

impl Connector for FakeConnector {
    type Transport = ScriptedTransport;

    fn readers(&mut self) -> Result<Vec<String>, Error> {
        Ok(self.readers.clone())
    }

    fn connect(&mut self, reader: &str) -> Result<ScriptedTransport, Error> {
        self.cards.remove(reader).ok_or_else(|| Error::NoCard {
            reader: reader.to_owned(),
        })
    }
}

fn no_keys(_: &LockedApplet<'_>) -> Result<Option<[u8; 16]>, Error> {
    Ok(None)
}

const LIST: &str = "00 A1 00 00";
/// LIST response: "AWS" and "AWS-prod", both TOTP SHA-1.
const LIST_AWS: &str = "72 04 21 41 57 53 72 09 21 41 57 53 2D 70 72 6F 64 90 00";
/// LIST response: only "AWS-prod".
const LIST_PROD: &str = "72 09 21 41 57 53 2D 70 72 6F 64 90 00";

#[test]
fn single_candidate_skips_list() {
    let mut connector = FakeConnector::new()
        .empty_reader("Other Reader 00 00")
        .card(
            "Yubico YubiKey OTP+FIDO+CCID 00 00",
            selected().expect(
                "00 A2 00 01 0F 71 03 41 57 53 74 08 00 00 00 00 00 00 00 01",
                "76 05 06 00 01 E2 40 90 00",
            ),
        );
    let (reader, mut session) = find_credential(&mut connector, None, "AWS", no_keys).unwrap();
    assert_eq!(reader, "Yubico YubiKey OTP+FIDO+CCID 00 00");
    assert_eq!(session.apdu_count(), 1);
    assert_eq!(
        session.calculate_totp("AWS", 1).unwrap().to_string(),
        "123456"
    );
    assert_eq!(session.apdu_count(), 2);
}

#[test]
fn several_candidates_exact_match() {
    let mut connector = FakeConnector::new()
        .card("Key A", selected().expect(LIST, LIST_PROD))
        .card("Key B", selected().expect(LIST, LIST_AWS));
    let (reader, session) = find_credential(&mut connector, None, "AWS", no_keys).unwrap();
    assert_eq!(reader, "Key B");
    assert_eq!(session.apdu_count(), 2);
}

#[test]
fn several_holders_are_ambiguous() {
    let mut connector = FakeConnector::new()
        .card("Key A", selected().expect(LIST, LIST_AWS))
        .card("Key B", selected().expect(LIST, LIST_AWS));
    let error = find_credential(&mut connector, None, "AWS", no_keys).unwrap_err();
    let Error::AmbiguousCredential {
        ref name,
        ref readers,
    } = error
    else {
        panic!("expected AmbiguousCredential, got {error:?}");
    };
    assert_eq!(name, "AWS");
    assert_eq!(readers.len(), 2);
    let message = error.to_string();
    assert!(
        message.contains("\"Key A\" (credentials \"AWS\", \"AWS-prod\")"),
        "{message}"
    );
    assert!(message.contains("reader filter"), "{message}");
}

#[test]
fn no_holder_lists_contents() {
    let mut connector = FakeConnector::new()
        .card("Key A", selected().expect(LIST, LIST_PROD))
        .card("Key B", selected().expect(LIST, "90 00"))
        .empty_reader("Empty Reader");
    let error = find_credential(&mut connector, None, "AWS", no_keys).unwrap_err();
    let message = error.to_string();
    let Error::CredentialNotFound { readers, .. } = error else {
        panic!("expected CredentialNotFound, got {error:?}");
    };
    assert_eq!(readers.len(), 3);
    assert!(
        message.contains("\"Key A\" (credentials \"AWS-prod\")"),
        "{message}"
    );
    assert!(message.contains("\"Key B\" (no credentials)"), "{message}");
    assert!(message.contains("\"Empty Reader\" (no card)"), "{message}");
}

#[test]
fn filter_selects_reader_by_substring() {
    let mut connector = FakeConnector::new()
        .card("Key A 00 00", ScriptedTransport::new())
        .card("Key B 00 00", selected());
    let (reader, session) = find_credential(&mut connector, Some("Key B"), "AWS", no_keys).unwrap();
    assert_eq!(reader, "Key B 00 00");
    assert_eq!(session.apdu_count(), 1);
}

#[test]
fn filter_matching_nothing() {
    let mut connector = FakeConnector::new().card("Key A", ScriptedTransport::new());
    let error = find_credential(&mut connector, Some("Nano"), "AWS", no_keys).unwrap_err();
    assert!(
        matches!(error, Error::NoMatchingReader { ref filter, .. } if filter == "Nano"),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("\"Key A\" (not searched)"),
        "{error}"
    );
}

#[test]
fn no_readers_at_all() {
    let error = find_credential(&mut FakeConnector::new(), None, "AWS", no_keys).unwrap_err();
    assert!(matches!(error, Error::NoReaders), "{error:?}");
}

#[test]
fn card_without_applet_is_skipped() {
    let mut connector = FakeConnector::new()
        .card(
            "Smart Card",
            ScriptedTransport::new().expect(SELECT, "6A 82"),
        )
        .card("YubiKey", selected());
    let (reader, _) = find_credential(&mut connector, None, "AWS", no_keys).unwrap();
    assert_eq!(reader, "YubiKey");
}

#[test]
fn no_applet_anywhere() {
    let mut connector = FakeConnector::new()
        .card(
            "Smart Card",
            ScriptedTransport::new().expect(SELECT, "6A 82"),
        )
        .empty_reader("Empty");
    let error = find_credential(&mut connector, None, "AWS", no_keys).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::NoOathApplet { .. }), "{error:?}");
    assert!(
        message.contains("no OATH applet, SELECT returned 6A82"),
        "{message}"
    );
}

#[test]
fn only_reader_without_card() {
    let mut connector = FakeConnector::new().empty_reader("YubiKey");
    let error = find_credential(&mut connector, None, "AWS", no_keys).unwrap_err();
    assert!(
        matches!(error, Error::NoCard { ref reader } if reader == "YubiKey"),
        "{error:?}"
    );
}

#[test]
fn single_locked_candidate_left_to_caller() {
    let mut connector = FakeConnector::new().card(
        "YubiKey",
        ScriptedTransport::new().expect(SELECT, SELECT_LOCKED),
    );
    let mut asked = false;
    let (_, session) = find_credential(&mut connector, None, "AWS", |_| {
        asked = true;
        Ok(None)
    })
    .unwrap();
    assert!(session.needs_validation());
    assert!(!asked, "unlock was called for a single candidate");
}

/// Returns a locked card whose VALIDATE accepts any response and responds with `key`.
fn locked_card(key: Vec<u8>, list: &str) -> ScriptedTransport {
    ScriptedTransport::new()
        .expect(SELECT, SELECT_LOCKED)
        .handle(move |command| {
            assert_eq!(command[1], 0xA3, "expected VALIDATE");
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
            mac.update(&command[command.len() - 8..]);
            let mut response = hex("75 14");
            response.extend_from_slice(&mac.finalize().into_bytes());
            response.extend_from_slice(&hex("90 00"));
            response
        })
        .expect(LIST, list)
}

#[test]
fn locked_candidate_unlocked_by_callback() {
    let key = [0x42u8; 16];
    let mut connector = FakeConnector::new()
        .card("Key A", selected().expect(LIST, LIST_PROD))
        .card("Key B", locked_card(key.to_vec(), LIST_AWS));
    let mut seen_readers = Vec::new();
    let (reader, session) = find_credential(&mut connector, None, "AWS", |locked| {
        seen_readers.push(locked.reader.to_owned());
        assert_eq!(locked.salt, hex("01 02 03 04 05 06 07 08"));
        Ok(Some(key))
    })
    .unwrap();
    assert_eq!(reader, "Key B");
    assert!(!session.needs_validation());
    assert_eq!(seen_readers, ["Key B"]);
}

#[test]
fn locked_candidate_skipped_without_key() {
    let mut connector = FakeConnector::new()
        .card("Key A", selected().expect(LIST, LIST_PROD))
        .card(
            "Key B",
            ScriptedTransport::new().expect(SELECT, SELECT_LOCKED),
        );
    let error = find_credential(&mut connector, None, "AWS", no_keys).unwrap_err();
    let Error::CredentialNotFound { ref readers, .. } = error else {
        panic!("expected CredentialNotFound, got {error:?}");
    };
    assert_eq!(readers[1].contents, Contents::Locked);
    assert!(
        error
            .to_string()
            .contains("\"Key B\" (password protected, not listed)"),
        "{error}"
    );
}
