//! Returns arbitrary responses to LIST after a valid SELECT; parsing must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ykoath::OathSession;

#[path = "scripted.rs"]
mod scripted;

fuzz_target!(|data: &[u8]| {
    let transport = scripted::Scripted::new(Some(scripted::SELECT_OK), data);
    let mut session = OathSession::select(transport).expect("the fixed SELECT response parses");
    if let Ok(credentials) = session.list() {
        for credential in credentials {
            let _ = credential.period();
        }
    }
});
