//! Returns arbitrary responses to SELECT (and any SEND REMAINING); parsing must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ykoath::OathSession;

#[path = "scripted.rs"]
mod scripted;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = OathSession::select(scripted::Scripted::new(None, data)) {
        let _ = session.version().to_string();
        let _ = session.device_id();
        let _ = session.needs_validation();
        assert!(session.apdu_count() >= 1);
    }
});
