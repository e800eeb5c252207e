//! APDU encoding, response splitting, response chaining and TLV parsing.

mod common;

use common::{hex, to_hex, ScriptedTransport};
use ykoath::apdu::{Command, Response};
use ykoath::transport::{transmit_chained, transmit_ok};
use ykoath::{tlv, Error, StatusWord};

#[test]
fn short_apdu_cases() {
    let header_only = Command::new(0xA5, 0x00, 0x00);
    assert_eq!(
        to_hex(&header_only.to_short_bytes().unwrap()),
        "00 A5 00 00"
    );

    let with_data = Command::new(0x02, 0x00, 0x00).with_data(hex("71 01 41"));
    assert_eq!(
        to_hex(&with_data.to_short_bytes().unwrap()),
        "00 02 00 00 03 71 01 41"
    );

    let with_le_256 = Command::new(0xA1, 0x00, 0x00).with_le(256);
    assert_eq!(
        to_hex(&with_le_256.to_short_bytes().unwrap()),
        "00 A1 00 00 00"
    );

    let data_and_le = Command::new(0xA1, 0x00, 0x00)
        .with_data(vec![0xAA])
        .with_le(16);
    assert_eq!(
        to_hex(&data_and_le.to_short_bytes().unwrap()),
        "00 A1 00 00 01 AA 10"
    );
}

#[test]
fn short_apdu_rejects_oversize() {
    let too_long = Command::new(0x01, 0x00, 0x00).with_data(vec![0; 256]);
    assert!(matches!(
        too_long.to_short_bytes(),
        Err(Error::InvalidArgument(_))
    ));

    let le_too_big = Command::new(0x01, 0x00, 0x00).with_le(257);
    assert!(matches!(
        le_too_big.to_short_bytes(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn extended_apdu_cases() {
    let data = Command::new(0x01, 0x00, 0x00).with_data(vec![0xAB; 3]);
    assert_eq!(
        to_hex(&data.to_extended_bytes().unwrap()),
        "00 01 00 00 00 00 03 AB AB AB"
    );

    let le_only = Command::new(0xA1, 0x00, 0x00).with_le(65536);
    assert_eq!(
        to_hex(&le_only.to_extended_bytes().unwrap()),
        "00 A1 00 00 00 00 00"
    );

    let data_and_le = Command::new(0xA1, 0x00, 0x00)
        .with_data(vec![0x01])
        .with_le(0x0102);
    assert_eq!(
        to_hex(&data_and_le.to_extended_bytes().unwrap()),
        "00 A1 00 00 00 00 01 01 01 02"
    );

    let big = Command::new(0x01, 0x00, 0x00).with_data(vec![0x55; 300]);
    let bytes = big.to_bytes().unwrap();
    assert_eq!(to_hex(&bytes[..7]), "00 01 00 00 00 01 2C");
    assert_eq!(bytes.len(), 7 + 300);

    let too_long = Command::new(0x01, 0x00, 0x00).with_data(vec![0; 65536]);
    assert!(matches!(
        too_long.to_extended_bytes(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn to_bytes_prefers_short() {
    let small = Command::new(0x01, 0x00, 0x00).with_data(vec![0x11; 255]);
    assert_eq!(small.to_bytes().unwrap()[4], 0xFF);
    assert_eq!(small.to_bytes().unwrap().len(), 5 + 255);
}

#[test]
fn response_split_and_status_words() {
    let response = Response::parse("TEST", &hex("01 02 61 10")).unwrap();
    assert_eq!(response.data, hex("01 02"));
    assert_eq!(response.sw, StatusWord(0x6110));
    assert_eq!(response.sw.more_data(), Some(0x10));
    assert_eq!(response.sw.to_string(), "6110");

    let only_sw = Response::parse("TEST", &hex("90 00")).unwrap();
    assert!(only_sw.data.is_empty());
    assert!(only_sw.sw.is_success());
    assert_eq!(only_sw.sw.more_data(), None);

    for short in [&[][..], &[0x90][..]] {
        let error = Response::parse("TEST", short).unwrap_err();
        assert!(
            matches!(
                error,
                Error::Malformed {
                    command: "TEST",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn chaining_joins_several_parts() {
    let mut transport = ScriptedTransport::new()
        .expect("00 A1 00 00", "01 02 61 00")
        .expect("00 A5 00 00", "03 04 61 02")
        .expect("00 A5 00 00", "05 06 61 FF")
        .expect("00 A5 00 00", "07 90 00");
    let response = transmit_chained(&mut transport, "LIST", &Command::new(0xA1, 0, 0)).unwrap();
    assert_eq!(to_hex(&response.data), "01 02 03 04 05 06 07");
    assert_eq!(response.sw, StatusWord::SUCCESS);
}

#[test]
fn chaining_keeps_final_error_status() {
    let mut transport = ScriptedTransport::new()
        .expect("00 A1 00 00", "01 61 01")
        .expect("00 A5 00 00", "6A 80");
    let error = transmit_ok(&mut transport, "LIST", &Command::new(0xA1, 0, 0)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Status {
                command: "LIST",
                sw: StatusWord::WRONG_DATA
            }
        ),
        "{error:?}"
    );
}

#[test]
fn chaining_stops_endless_more_data() {
    let mut transport = common::ReplayTransport(hex("00 61 00"));
    let error = transmit_chained(&mut transport, "LIST", &Command::new(0xA1, 0, 0)).unwrap_err();
    assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
}

#[test]
fn chaining_rejects_short_part() {
    let mut transport = ScriptedTransport::new()
        .expect("00 A1 00 00", "01 61 01")
        .expect("00 A5 00 00", "90");
    let error = transmit_chained(&mut transport, "LIST", &Command::new(0xA1, 0, 0)).unwrap_err();
    assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
}

#[test]
fn tlv_length_forms_round_trip() {
    for (length, header) in [
        (0usize, "71 00"),
        (0x7F, "71 7F"),
        (0x80, "71 81 80"),
        (0xFF, "71 81 FF"),
        (0x100, "71 82 01 00"),
        (0xFFFF, "71 82 FF FF"),
    ] {
        let value = vec![0x5A; length];
        let encoded = tlv::encode(0x71, &value).unwrap();
        let header_bytes = hex(header);
        assert_eq!(
            to_hex(&encoded[..header_bytes.len()]),
            header,
            "header for length {length}"
        );
        assert_eq!(encoded.len(), header_bytes.len() + length);

        let (item, rest) = tlv::parse_one("TEST", &encoded).unwrap();
        assert_eq!(item.tag, 0x71);
        assert_eq!(item.value.len(), length);
        assert!(rest.is_empty());
    }
    assert!(matches!(
        tlv::encode(0x71, &vec![0; 0x10000]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn tlv_parse_all_sequence() {
    let data = hex("71 02 41 42 74 00 75 81 01 FF");
    let items = tlv::parse_all("TEST", &data).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!((items[0].tag, items[0].value), (0x71, &b"AB"[..]));
    assert_eq!((items[1].tag, items[1].value), (0x74, &[][..]));
    assert_eq!((items[2].tag, items[2].value), (0x75, &[0xFF][..]));
}

#[test]
fn tlv_malformed_inputs_are_errors() {
    let cases = [
        ("tag only", "71"),
        ("length past the end", "71 05 01 02"),
        ("0x81 without length byte", "71 81"),
        ("0x82 with one length byte", "71 82 01"),
        ("0x82 length past the end", "71 82 01 00 00"),
        ("0x81 length past the end", "71 81 80 00"),
        ("unsupported length form", "71 83 00 00 01"),
        ("indefinite length", "71 80"),
        ("second item truncated", "71 01 41 72"),
    ];
    for (case, input) in cases {
        let bytes = hex(input);
        let result = tlv::parse_all("TEST", &bytes);
        assert!(
            matches!(result, Err(Error::Malformed { .. })),
            "{case}: {result:?}"
        );
    }
}

#[test]
fn tlv_expect_single_checks_tag_and_rest() {
    assert_eq!(
        tlv::expect_single("TEST", &hex("76 01 07"), 0x76).unwrap(),
        &[0x07]
    );

    let wrong_tag_bytes = hex("75 01 07");
    let wrong_tag = tlv::expect_single("TEST", &wrong_tag_bytes, 0x76);
    assert!(
        matches!(wrong_tag, Err(Error::Malformed { .. })),
        "{wrong_tag:?}"
    );

    let trailing_bytes = hex("76 01 07 00");
    let trailing = tlv::expect_single("TEST", &trailing_bytes, 0x76);
    assert!(
        matches!(trailing, Err(Error::Malformed { .. })),
        "{trailing:?}"
    );

    let empty = tlv::expect_single("TEST", &[], 0x76);
    assert!(matches!(empty, Err(Error::Malformed { .. })), "{empty:?}");
}
