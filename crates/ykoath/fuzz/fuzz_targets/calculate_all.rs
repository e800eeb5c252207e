//! Returns arbitrary responses to CALCULATE ALL after a valid SELECT; parsing must not
//! panic, and every code it returns must fit its number of digits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ykoath::{CalculateAllResult, OathSession};

#[path = "scripted.rs"]
mod scripted;

fuzz_target!(|data: &[u8]| {
    let transport = scripted::Scripted::new(Some(scripted::SELECT_OK), data);
    let mut session = OathSession::select(transport).expect("the fixed SELECT response parses");
    if let Ok(results) = session.calculate_all(&ykoath::totp_challenge(1)) {
        for (_name, result) in results {
            if let CalculateAllResult::Code(code) = result {
                assert!(u64::from(code.value()) < 10u64.pow(u32::from(code.digits())));
                assert_eq!(code.to_string().len(), usize::from(code.digits()));
            }
        }
    }
});
