//! Feeds arbitrary bytes to the TLV parsers, which must return without panicking, and
//! checks that every TLV they accept encodes to bytes that parse back to the same tag and value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ykoath::tlv;

fuzz_target!(|data: &[u8]| {
    if let Ok(items) = tlv::parse_all("FUZZ", data) {
        let mut rest = data;
        for item in items {
            let (again, after) = tlv::parse_one("FUZZ", rest).expect("parse_all accepted it");
            assert_eq!(again, item);
            // Long-form lengths are accepted for short values, so only the value round-trips.
            let encoded = tlv::encode(item.tag, item.value).expect("a parsed value fits");
            let (decoded, tail) = tlv::parse_one("FUZZ", &encoded).expect("encoded TLV parses");
            assert_eq!(decoded, item);
            assert!(tail.is_empty());
            rest = after;
        }
    }
    if let Some((&tag, rest)) = data.split_first() {
        let _ = tlv::expect_single("FUZZ", rest, tag);
    }
});
