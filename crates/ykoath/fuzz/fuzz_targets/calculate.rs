//! Returns arbitrary responses to CALCULATE after a valid SELECT, and feeds the input to
//! the truncated-code parser directly. Neither may panic, and a code must fit its digits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ykoath::{Code, OathSession};

#[path = "scripted.rs"]
mod scripted;

fn check(code: Code) {
    assert!((1..=10).contains(&code.digits()));
    assert!(u64::from(code.value()) < 10u64.pow(u32::from(code.digits())));
    assert_eq!(code.to_string().len(), usize::from(code.digits()));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(code) = Code::from_truncated("FUZZ", data) {
        check(code);
    }
    let transport = scripted::Scripted::new(Some(scripted::SELECT_OK), data);
    let mut session = OathSession::select(transport).expect("the fixed SELECT response parses");
    if let Ok(code) = session.calculate_totp("aws/iam/123456789012:fuzz", 1) {
        check(code);
    }
});
