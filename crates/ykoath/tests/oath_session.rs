//! Byte-exact tests of every OATH instruction against a scripted fake card.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{hex, selected, to_hex, ScriptedTransport, SELECT, SELECT_LOCKED, SELECT_OPEN};
use hmac::{Hmac, Mac};
use ykoath::{
    derive_key, time_step, totp_challenge, Algorithm, CalculateAllResult, Credential, Error, Kind,
    OathSession, StatusWord, Version,
};

fn open(transport: ScriptedTransport) -> OathSession<ScriptedTransport> {
    OathSession::select(transport).expect("SELECT")
}

// --- SELECT -----------------------------------------------------------------

#[test]
fn select_open_applet() {
    let session = open(selected());
    assert_eq!(
        session.version(),
        Version {
            major: 5,
            minor: 4,
            patch: 3
        }
    );
    assert_eq!(session.salt(), hex("01 02 03 04 05 06 07 08"));
    assert!(!session.needs_validation());
    // base64(SHA-256(salt)[..16]) without padding, computed with Python's hashlib.
    assert_eq!(session.device_id(), "ZoQN2hVOihE8Md0K0y9/Og");
    assert_eq!(session.apdu_count(), 1);
}

#[test]
fn select_locked_applet() {
    let session = open(ScriptedTransport::new().expect(SELECT, SELECT_LOCKED));
    assert!(session.needs_validation());
}

#[test]
fn select_ignores_unknown_tags() {
    let session =
        open(ScriptedTransport::new().expect(SELECT, "79 03 04 02 06 8F 02 AA BB 71 01 09 90 00"));
    assert_eq!(session.version().to_string(), "4.2.6");
    assert_eq!(session.salt(), &[0x09]);
}

#[test]
fn select_malformed_responses() {
    let cases = [
        ("empty", ""),
        ("one byte", "90"),
        ("only SW", "90 00"),
        ("no salt", "79 03 05 04 03 90 00"),
        ("no version", "71 08 01 02 03 04 05 06 07 08 90 00"),
        ("short version", "79 02 05 04 71 01 00 90 00"),
        ("length past the end", "79 03 05 04 03 71 09 01 02 90 00"),
        (
            "unknown algorithm",
            "79 03 05 04 03 71 01 00 74 01 00 7B 01 09 90 00",
        ),
        (
            "empty algorithm",
            "79 03 05 04 03 71 01 00 74 01 00 7B 00 90 00",
        ),
    ];
    for (case, response) in cases {
        let transport = ScriptedTransport::new().expect(SELECT, response);
        let error = OathSession::select(transport).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Malformed {
                    command: "SELECT",
                    ..
                }
            ),
            "{case}: {error:?}"
        );
    }
}

#[test]
fn select_without_applet_is_status() {
    let transport = ScriptedTransport::new().expect(SELECT, "6A 82");
    let error = OathSession::select(transport).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Status {
                command: "SELECT",
                sw: StatusWord::FILE_NOT_FOUND
            }
        ),
        "{error:?}"
    );
}

// --- CALCULATE --------------------------------------------------------------

const CALCULATE_AWS_STEP_1: &str = "00 A2 00 01 0F 71 03 41 57 53 74 08 00 00 00 00 00 00 00 01";

#[test]
fn calculate_exact_bytes_and_code() {
    // 0x0001E240 is 123456.
    let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, "76 05 06 00 01 E2 40 90 00"));
    let code = session.calculate_totp("AWS", 1).unwrap();
    assert_eq!(code.to_string(), "123456");
    assert_eq!(code.digits(), 6);
    assert_eq!(session.apdu_count(), 2);
}

#[test]
fn calculate_masks_top_bit() {
    // 0xFFFFFFFF masked is 2147483647.
    let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, "76 05 06 FF FF FF FF 90 00"));
    assert_eq!(
        session.calculate_totp("AWS", 1).unwrap().to_string(),
        "483647"
    );
}

#[test]
fn calculate_keeps_leading_zeros() {
    let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, "76 05 08 00 00 00 07 90 00"));
    assert_eq!(
        session.calculate_totp("AWS", 1).unwrap().to_string(),
        "00000007"
    );
}

type ErrorCheck = fn(&Error) -> bool;

#[test]
fn calculate_status_words_map_to_errors() {
    let cases: [(&str, ErrorCheck); 5] = [
        (
            "69 84",
            |error| matches!(error, Error::NoSuchCredential { name } if name == "AWS"),
        ),
        ("69 85", |error| matches!(error, Error::TouchTimeout)),
        ("69 82", |error| matches!(error, Error::AuthRequired)),
        ("6A 80", |error| {
            matches!(
                error,
                Error::Status {
                    sw: StatusWord::WRONG_DATA,
                    ..
                }
            )
        }),
        ("6F 00", |error| {
            matches!(
                error,
                Error::Status {
                    sw: StatusWord(0x6F00),
                    ..
                }
            )
        }),
    ];
    for (sw, expected) in cases {
        let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, sw));
        let error = session.calculate_totp("AWS", 1).unwrap_err();
        assert!(expected(&error), "{sw}: {error:?}");
    }
}

#[test]
fn calculate_malformed_responses() {
    let cases = [
        ("empty", ""),
        ("only SW", "90 00"),
        ("four bytes", "76 04 06 00 00 01 90 00"),
        ("six bytes", "76 06 06 00 00 00 01 02 90 00"),
        ("wrong tag", "75 05 06 00 00 00 01 90 00"),
        ("length past the end", "76 09 06 00 01 90 00"),
        ("zero digits", "76 05 00 00 00 00 01 90 00"),
        ("eleven digits", "76 05 0B 00 00 00 01 90 00"),
        ("trailing bytes", "76 05 06 00 00 00 01 00 90 00"),
    ];
    for (case, response) in cases {
        let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, response));
        let error = session.calculate_totp("AWS", 1).unwrap_err();
        assert!(
            matches!(error, Error::Malformed { .. }),
            "{case}: {error:?}"
        );
    }
}

/// Plays the card side of CALCULATE: HMAC of the challenge with `secret`
/// and RFC 4226 dynamic truncation, leaving the top bit for the client to mask.
fn card_calculate(algorithm: Algorithm, secret: &[u8], challenge: &[u8], digits: u8) -> Vec<u8> {
    let mac = match algorithm {
        Algorithm::Sha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
            mac.update(challenge);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(challenge);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha512 => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(challenge);
            mac.finalize().into_bytes().to_vec()
        }
    };
    let offset = usize::from(mac[mac.len() - 1] & 0x0F);
    let mut response = vec![0x76, 0x05, digits];
    response.extend_from_slice(&mac[offset..offset + 4]);
    response.extend_from_slice(&[0x90, 0x00]);
    response
}

#[test]
fn totp_rfc6238_vectors() {
    let sha1_secret = b"12345678901234567890".to_vec();
    let sha256_secret = b"12345678901234567890123456789012".to_vec();
    let sha512_secret =
        b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
    // RFC 6238 Appendix B: time, T in hex, and the SHA-1, SHA-256, SHA-512 codes.
    let vectors = [
        (
            59u64,
            "00 00 00 00 00 00 00 01",
            "94287082",
            "46119246",
            "90693936",
        ),
        (
            1111111109,
            "00 00 00 00 02 35 23 EC",
            "07081804",
            "68084774",
            "25091201",
        ),
        (
            1111111111,
            "00 00 00 00 02 35 23 ED",
            "14050471",
            "67062674",
            "99943326",
        ),
        (
            1234567890,
            "00 00 00 00 02 73 EF 07",
            "89005924",
            "91819424",
            "93441116",
        ),
        (
            2000000000,
            "00 00 00 00 03 F9 40 AA",
            "69279037",
            "90698825",
            "38618901",
        ),
        (
            20000000000,
            "00 00 00 00 27 BC 86 AA",
            "65353130",
            "77737706",
            "47863826",
        ),
    ];
    for (time, step_hex, sha1_code, sha256_code, sha512_code) in vectors {
        let step = time_step(time, 30);
        assert_eq!(to_hex(&totp_challenge(step)), step_hex, "T for {time}");

        for (algorithm, secret, expected) in [
            (Algorithm::Sha1, &sha1_secret, sha1_code),
            (Algorithm::Sha256, &sha256_secret, sha256_code),
            (Algorithm::Sha512, &sha512_secret, sha512_code),
        ] {
            let command = format!("00 A2 00 01 0F 71 03 41 57 53 74 08 {step_hex}");
            let response = card_calculate(algorithm, secret, &hex(step_hex), 8);
            let mut session = open(selected().expect_bytes(hex(&command), response));
            let code = session.calculate_totp("AWS", step).unwrap();
            assert_eq!(code.to_string(), expected, "{algorithm:?} at {time}");
        }
    }
}

#[test]
fn time_step_uses_period() {
    assert_eq!(time_step(59, 30), 1);
    assert_eq!(time_step(60, 30), 2);
    assert_eq!(time_step(119, 60), 1);
    assert_eq!(time_step(0, 30), 0);
}

// --- touch notice -----------------------------------------------------------

#[test]
fn touch_notice_fires_when_card_waits() {
    let transport = selected().handle(|command| {
        assert_eq!(to_hex(command), CALCULATE_AWS_STEP_1);
        std::thread::sleep(Duration::from_millis(800));
        hex("76 05 06 00 01 E2 40 90 00")
    });
    let mut session = open(transport);
    let notified = AtomicBool::new(false);
    let code = session
        .calculate_totp_with_notice("AWS", 1, || notified.store(true, Ordering::SeqCst))
        .unwrap();
    assert_eq!(code.to_string(), "123456");
    assert!(notified.load(Ordering::SeqCst), "on_wait was not called");
    assert_eq!(session.apdu_count(), 2);
}

#[test]
fn touch_notice_silent_when_fast() {
    let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, "76 05 06 00 01 E2 40 90 00"));
    let mut notified = false;
    let code = session
        .calculate_totp_with_notice("AWS", 1, || notified = true)
        .unwrap();
    assert_eq!(code.to_string(), "123456");
    assert!(
        !notified,
        "on_wait was called although the card answered at once"
    );
}

#[test]
fn touch_timeout_after_notice() {
    let transport = selected().handle(|_| {
        std::thread::sleep(Duration::from_millis(300));
        hex("69 85")
    });
    let mut session = open(transport);
    let notified = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&notified);
    let error = session
        .calculate_with_notice(
            "AWS",
            &totp_challenge(1),
            Duration::from_millis(50),
            move || flag.store(true, Ordering::SeqCst),
        )
        .unwrap_err();
    assert!(matches!(error, Error::TouchTimeout), "{error:?}");
    assert!(notified.load(Ordering::SeqCst));
    assert!(error.to_string().contains("within 15 seconds"), "{error}");
}

#[test]
fn notice_passes_no_such_credential() {
    let mut session = open(selected().expect(CALCULATE_AWS_STEP_1, "69 84"));
    let error = session
        .calculate_totp_with_notice("AWS", 1, || {})
        .unwrap_err();
    assert!(matches!(error, Error::NoSuchCredential { .. }), "{error:?}");
}

// --- LIST -------------------------------------------------------------------

#[test]
fn list_parses_kinds_and_algorithms() {
    let response = "72 04 21 41 57 53 \
                    72 05 12 68 6F 74 70 \
                    72 0B 23 36 30 2F 67 68 3A 75 73 65 72 \
                    90 00";
    let mut session = open(selected().expect("00 A1 00 00", response));
    let credentials = session.list().unwrap();
    assert_eq!(credentials.len(), 3);

    assert_eq!(credentials[0].name, "AWS");
    assert_eq!(credentials[0].kind, Kind::Totp);
    assert_eq!(credentials[0].algorithm, Algorithm::Sha1);
    assert_eq!(credentials[0].period(), Some(30));

    assert_eq!(credentials[1].name, "hotp");
    assert_eq!(credentials[1].kind, Kind::Hotp);
    assert_eq!(credentials[1].algorithm, Algorithm::Sha256);
    assert_eq!(credentials[1].period(), None);

    assert_eq!(credentials[2].name, "60/gh:user");
    assert_eq!(credentials[2].algorithm, Algorithm::Sha512);
    assert_eq!(credentials[2].period(), Some(60));
}

#[test]
fn list_empty_applet() {
    let mut session = open(selected().expect("00 A1 00 00", "90 00"));
    assert!(session.list().unwrap().is_empty());
}

#[test]
fn list_follows_chaining() {
    let mut session = open(
        selected()
            .expect("00 A1 00 00", "72 04 21 41 61 00")
            .expect("00 A5 00 00", "57 53 72 02 21 62 90 00"),
    );
    let names: Vec<String> = session
        .list()
        .unwrap()
        .into_iter()
        .map(|info| info.name)
        .collect();
    assert_eq!(names, ["AWS", "b"]);
    assert_eq!(session.apdu_count(), 3);
}

#[test]
fn list_malformed_responses() {
    let cases = [
        ("wrong tag", "71 02 21 41 90 00"),
        ("empty entry", "72 00 90 00"),
        ("unknown type", "72 02 31 41 90 00"),
        ("unknown algorithm", "72 02 24 41 90 00"),
        ("length past the end", "72 08 21 41 90 00"),
    ];
    for (case, response) in cases {
        let mut session = open(selected().expect("00 A1 00 00", response));
        let error = session.list().unwrap_err();
        assert!(
            matches!(
                error,
                Error::Malformed {
                    command: "LIST",
                    ..
                }
            ),
            "{case}: {error:?}"
        );
    }
}

#[test]
fn list_locked_is_auth_required() {
    let mut session = open(
        ScriptedTransport::new()
            .expect(SELECT, SELECT_LOCKED)
            .expect("00 A1 00 00", "69 82"),
    );
    let error = session.list().unwrap_err();
    assert!(matches!(error, Error::AuthRequired), "{error:?}");
}

// --- CALCULATE ALL ----------------------------------------------------------

#[test]
fn calculate_all_across_chained_parts() {
    let mut session = open(
        selected()
            .expect(
                "00 A4 00 01 0A 74 08 00 00 00 00 00 00 00 01",
                "71 03 41 57 53 76 05 61 00",
            )
            .expect("00 A5 00 00", "06 00 01 E2 40 71 04 68 6F 61 05")
            .expect("00 A5 00 00", "74 70 77 01 06 71 05 74 6F 61 02")
            .expect("00 A5 00 00", "75 63 68 7C 01 06 90 00"),
    );
    let results = session.calculate_all(&totp_challenge(1)).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].0, "AWS");
    match results[0].1 {
        CalculateAllResult::Code(code) => assert_eq!(code.to_string(), "123456"),
        other => panic!("expected a code for AWS, got {other:?}"),
    }
    assert_eq!(results[1], ("hotp".to_owned(), CalculateAllResult::Hotp));
    assert_eq!(results[2], ("touch".to_owned(), CalculateAllResult::Touch));
    assert_eq!(session.apdu_count(), 5);
}

#[test]
fn calculate_all_malformed_responses() {
    let cases = [
        ("name without result", "71 03 41 57 53 90 00"),
        ("result first", "76 05 06 00 00 00 01 71 01 41 90 00"),
        ("unknown result tag", "71 01 41 75 05 06 00 00 00 01 90 00"),
        ("short code", "71 01 41 76 03 06 00 00 90 00"),
        ("length past the end", "71 01 41 76 05 06 00 90 00"),
    ];
    for (case, response) in cases {
        let mut session =
            open(selected().expect("00 A4 00 01 0A 74 08 00 00 00 00 00 00 00 01", response));
        let error = session.calculate_all(&totp_challenge(1)).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Malformed {
                    command: "CALCULATE ALL",
                    ..
                }
            ),
            "{case}: {error:?}"
        );
    }
}

// --- PUT --------------------------------------------------------------------

#[test]
fn put_default_totp() {
    let command = "00 01 00 00 1D 71 03 41 57 53 \
                   73 16 21 06 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30";
    let mut session = open(selected().expect(command, "90 00"));
    session
        .put(&Credential::totp("AWS", b"12345678901234567890".to_vec()))
        .unwrap();
}

#[test]
fn put_pads_short_secret_and_sets_touch() {
    let command = "00 01 00 00 17 71 01 74 \
                   73 10 22 08 01 02 03 04 05 06 07 08 09 0A 00 00 00 00 \
                   78 02";
    let mut session = open(selected().expect(command, "90 00"));
    let credential = Credential {
        name: "t".into(),
        secret: hex("01 02 03 04 05 06 07 08 09 0A"),
        kind: Kind::Totp,
        algorithm: Algorithm::Sha256,
        digits: 8,
        touch: true,
        counter: 0,
    };
    session.put(&credential).unwrap();
}

#[test]
fn put_hashes_secret_longer_than_block() {
    // SHA-1 of the bytes 0..70, computed with Python's hashlib.
    let command = "00 01 00 00 1E 71 04 6C 6F 6E 67 \
                   73 16 21 06 C2 48 87 92 4F 92 AD AC 5A E3 67 99 5D 12 69 1C 66 2B 73 62";
    let mut session = open(selected().expect(command, "90 00"));
    session
        .put(&Credential::totp("long", (0u8..70).collect()))
        .unwrap();
}

#[test]
fn put_keeps_secret_of_block_size() {
    let command = format!("00 01 00 00 47 71 01 62 73 42 21 06 {}", "11 ".repeat(64));
    let mut session = open(selected().expect(&command, "90 00"));
    session.put(&Credential::totp("b", vec![0x11; 64])).unwrap();
}

#[test]
fn put_hotp_sha512_with_counter() {
    // SHA-512 of the bytes 0..130 (longer than its 128-byte block), from Python's hashlib.
    let hashed = "90272b89212c81b9700897f611f13ac1d291c33a437000c1423336b4d962dd39\
                  ce23413160f023963e12f4ccf90d2762b31bfc6818ef865e8a7cbf918a94c1db";
    let mut command = hex("00 01 00 00 4D 71 01 68 73 42 13 08");
    command.extend_from_slice(&hex(hashed));
    command.extend_from_slice(&hex("7A 04 00 00 00 05"));
    let mut session = open(selected().expect_bytes(command, hex("90 00")));
    let credential = Credential {
        name: "h".into(),
        secret: (0u8..130).collect(),
        kind: Kind::Hotp,
        algorithm: Algorithm::Sha512,
        digits: 8,
        touch: false,
        counter: 5,
    };
    session.put(&credential).unwrap();
}

#[test]
fn put_rejects_invalid_credentials() {
    let base = Credential::totp("AWS", b"12345678901234567890".to_vec());
    let cases = [
        (
            "five digits",
            Credential {
                digits: 5,
                ..base.clone()
            },
        ),
        (
            "nine digits",
            Credential {
                digits: 9,
                ..base.clone()
            },
        ),
        (
            "empty name",
            Credential {
                name: String::new(),
                ..base.clone()
            },
        ),
        (
            "name of 65 bytes",
            Credential {
                name: "n".repeat(65),
                ..base.clone()
            },
        ),
        (
            "empty secret",
            Credential {
                secret: Vec::new(),
                ..base.clone()
            },
        ),
        (
            "TOTP with counter",
            Credential {
                counter: 1,
                ..base.clone()
            },
        ),
    ];
    for (case, credential) in cases {
        // The script contains only SELECT, so any APDU sent would fail the test.
        let mut session = open(selected());
        let error = session.put(&credential).unwrap_err();
        assert!(
            matches!(error, Error::InvalidCredential { .. }),
            "{case}: {error:?}"
        );
    }
}

#[test]
fn put_checks_firmware_features() {
    let old = "79 03 04 02 05 71 01 00 90 00";
    let mut session = open(ScriptedTransport::new().expect(SELECT, old));
    let touch = Credential {
        touch: true,
        ..Credential::totp("AWS", vec![1; 20])
    };
    assert!(matches!(
        session.put(&touch),
        Err(Error::InvalidCredential { .. })
    ));
    let sha512 = Credential {
        algorithm: Algorithm::Sha512,
        ..Credential::totp("AWS", vec![1; 20])
    };
    assert!(matches!(
        session.put(&sha512),
        Err(Error::InvalidCredential { .. })
    ));
}

#[test]
fn put_no_space() {
    let mut session = open(selected().expect(
        "00 01 00 00 1D 71 03 41 57 53 73 16 21 06 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30",
        "6A 84",
    ));
    let error = session
        .put(&Credential::totp("AWS", b"12345678901234567890".to_vec()))
        .unwrap_err();
    assert!(matches!(error, Error::NoSpace), "{error:?}");
}

#[test]
fn credential_debug_hides_secret() {
    let credential = Credential::totp("AWS", b"SECRETSECRETSECRET".to_vec());
    let debug = format!("{credential:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(!debug.contains("83, 69"), "{debug}");
    assert!(debug.contains("<18 bytes>"), "{debug}");
}

// --- DELETE, RENAME, RESET, SET CODE ----------------------------------------

#[test]
fn delete_exact_bytes() {
    let mut session = open(selected().expect("00 02 00 00 05 71 03 41 57 53", "90 00"));
    session.delete("AWS").unwrap();
}

#[test]
fn delete_missing_credential() {
    let mut session = open(selected().expect("00 02 00 00 05 71 03 41 57 53", "69 84"));
    let error = session.delete("AWS").unwrap_err();
    assert!(
        matches!(error, Error::NoSuchCredential { ref name } if name == "AWS"),
        "{error:?}"
    );
}

#[test]
fn rename_exact_bytes() {
    let mut session = open(selected().expect("00 05 00 00 06 71 01 61 71 01 62", "90 00"));
    session.rename("a", "b").unwrap();
}

#[test]
fn reset_selects_again() {
    let mut session = open(
        selected()
            .expect("00 04 DE AD", "90 00")
            .expect(SELECT, "79 03 05 04 03 71 08 11 12 13 14 15 16 17 18 90 00"),
    );
    session.reset().unwrap();
    assert_eq!(session.salt(), hex("11 12 13 14 15 16 17 18"));
    assert_eq!(session.apdu_count(), 3);
}

#[test]
fn clear_code_exact_bytes() {
    let mut session = open(selected().expect("00 03 00 00 02 73 00", "90 00"));
    session.clear_code().unwrap();
}

#[test]
fn set_code_proves_key() {
    let key: [u8; 16] = hex("49 56 1f 12 fb 17 06 5d d6 80 fc 5a 61 d7 40 a6")
        .try_into()
        .unwrap();
    let transport = selected().handle(move |command| {
        let mut prefix = hex("00 03 00 00 33 73 11 21");
        prefix.extend_from_slice(&key);
        prefix.extend_from_slice(&hex("74 08"));
        assert_eq!(to_hex(&command[..prefix.len()]), to_hex(&prefix));
        let challenge = &command[prefix.len()..prefix.len() + 8];
        assert_eq!(
            to_hex(&command[prefix.len() + 8..prefix.len() + 10]),
            "75 14"
        );
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
        mac.update(challenge);
        mac.verify_slice(&command[prefix.len() + 10..])
            .expect("SET CODE response is HMAC-SHA1 of the challenge");
        hex("90 00")
    });
    let mut session = open(transport);
    session.set_code(&key).unwrap();
}

// --- VALIDATE ---------------------------------------------------------------

/// PBKDF2-HMAC-SHA1("correct horse", salt 01..08, 1000 iterations, 16 bytes),
/// computed with Python's hashlib.
const KEY: &str = "49 56 1f 12 fb 17 06 5d d6 80 fc 5a 61 d7 40 a6";
/// HMAC-SHA1(KEY, A1..A8), computed with Python's hmac.
const RESPONSE_TO_CARD: &str = "a5 1b c1 7e 7a cf a4 4e 5f 1a 04 ce d4 b9 38 af 52 ee 69 1d";

#[test]
fn derive_key_matches_pbkdf2() {
    assert_eq!(
        to_hex(&derive_key(
            "correct horse",
            &hex("01 02 03 04 05 06 07 08")
        )),
        to_hex(&hex(KEY))
    );
}

/// Returns a fake card that checks VALIDATE and responds to our challenge with `card_key`.
fn validating_card(card_key: Vec<u8>) -> ScriptedTransport {
    ScriptedTransport::new()
        .expect(SELECT, SELECT_LOCKED)
        .handle(move |command| {
            let prefix = hex(&format!("00 A3 00 00 20 75 14 {RESPONSE_TO_CARD} 74 08"));
            assert_eq!(command.len(), prefix.len() + 8);
            assert_eq!(to_hex(&command[..prefix.len()]), to_hex(&prefix));
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&card_key).unwrap();
            mac.update(&command[prefix.len()..]);
            let mut response = hex("75 14");
            response.extend_from_slice(&mac.finalize().into_bytes());
            response.extend_from_slice(&hex("90 00"));
            response
        })
}

#[test]
fn validate_right_password() {
    let mut session =
        open(validating_card(hex(KEY)).expect(CALCULATE_AWS_STEP_1, "76 05 06 00 01 E2 40 90 00"));
    assert!(session.needs_validation());
    let key = derive_key("correct horse", session.salt());
    session.validate(&key).unwrap();
    assert!(!session.needs_validation());
    assert_eq!(
        session.calculate_totp("AWS", 1).unwrap().to_string(),
        "123456"
    );
}

#[test]
fn validate_wrong_password_rejected_by_card() {
    let transport = ScriptedTransport::new()
        .expect(SELECT, SELECT_LOCKED)
        .handle(|command| {
            assert_eq!(to_hex(&command[..7]), "00 A3 00 00 20 75 14");
            assert_ne!(to_hex(&command[7..27]), to_hex(&hex(RESPONSE_TO_CARD)));
            hex("6A 80")
        });
    let mut session = open(transport);
    let key = derive_key("wrong horse", session.salt());
    let error = session.validate(&key).unwrap_err();
    assert!(matches!(error, Error::WrongPassword), "{error:?}");
    assert!(session.needs_validation());
}

#[test]
fn validate_rejects_card_with_other_key() {
    let mut session = open(validating_card(vec![0x42; 16]));
    let key = derive_key("correct horse", session.salt());
    let error = session.validate(&key).unwrap_err();
    assert!(matches!(error, Error::WrongPassword), "{error:?}");
    assert!(session.needs_validation());
}

#[test]
fn validate_malformed_card_answer() {
    let transport = ScriptedTransport::new()
        .expect(SELECT, SELECT_LOCKED)
        .handle(|_| hex("74 02 00 00 90 00"));
    let mut session = open(transport);
    let error = session.validate(&hex(KEY)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Malformed {
                command: "VALIDATE",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn validate_open_applet_sends_nothing() {
    let mut session = open(selected());
    session.validate(&hex(KEY)).unwrap();
    assert_eq!(session.apdu_count(), 1);
}

// --- robustness -------------------------------------------------------------

/// Feeds pseudo-random responses to every parser; each must return, not panic.
#[test]
fn random_responses_never_panic() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let tags = [
        0x71u8, 0x72, 0x74, 0x75, 0x76, 0x77, 0x79, 0x7B, 0x7C, 0x81, 0x82,
    ];
    for _ in 0..20_000 {
        let length = (next() % 24) as usize;
        let mut response: Vec<u8> = (0..length)
            .map(|index| {
                let value = next();
                // Bias towards real tags and small lengths so that parsing goes deep.
                if index % 3 == 0 {
                    tags[(value % tags.len() as u64) as usize]
                } else {
                    (value % 9) as u8
                }
            })
            .collect();
        if next() % 4 != 0 {
            response.extend_from_slice(&[0x90, 0x00]);
        }

        let _ = OathSession::select(common::ReplayTransport(response.clone()));
        let mut session = OathSession::select(common::ReplayTransport(hex(SELECT_OPEN))).unwrap();
        session.transport_mut().0 = response.clone();
        let _ = session.calculate_totp("AWS", 1);
        let _ = session.list();
        let _ = session.calculate_all(&totp_challenge(1));
        let mut locked = OathSession::select(common::ReplayTransport(hex(SELECT_LOCKED))).unwrap();
        locked.transport_mut().0 = response;
        let _ = locked.validate(&[0; 16]);
    }
}
