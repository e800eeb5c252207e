//! PC/SC error mapping against whatever pcscd this machine has.
//!
//! Ignored by default because pcscd is shared by the whole machine and
//! tests with a virtual card must not run alongside it. Run with
//! `cargo test -p ykoath --test pcsc -- --ignored`.

#![cfg(feature = "pcsc")]

use ykoath::Error;

#[test]
#[ignore = "uses the machine's pcscd"]
fn open_maps_pcsc_errors() {
    match ykoath::open_for_credential(None, "AWS") {
        Ok((reader, session)) => {
            assert!(!reader.is_empty());
            assert_eq!(session.apdu_count(), 1);
        }
        Err(error @ Error::Pcsc { .. }) => panic!("PC/SC error left unmapped: {error:?}"),
        Err(error) => {
            // Every other outcome is a mapped variant with an actionable message.
            eprintln!("outcome: {error}");
            assert!(!error.to_string().is_empty());
        }
    }
}

#[test]
#[ignore = "needs pcscd to be stopped"]
fn no_pcscd_is_reported() {
    let error = ykoath::pcsc::establish_context()
        .and_then(|context| ykoath::pcsc::list_readers(&context))
        .unwrap_err();
    assert!(matches!(error, Error::PcscdNotRunning), "{error:?}");
    assert!(error.to_string().contains("pcscd"), "{error}");
}
