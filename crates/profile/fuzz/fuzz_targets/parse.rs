//! Feeds arbitrary bytes through `awsu_profile::parse`, which must return without panicking.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A 0xFF byte never occurs in UTF-8, so the first one splits config text from credentials text.
    let (config, credentials) = match data.iter().position(|&byte| byte == 0xff) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[][..]),
    };
    let config = String::from_utf8_lossy(config);
    let credentials = String::from_utf8_lossy(credentials);

    let result = awsu_profile::parse(
        &config,
        Path::new("config"),
        &credentials,
        Path::new("credentials"),
    );
    if let Ok(set) = result {
        for name in set.names() {
            let profile = set.profile(name).expect("listed profile exists");
            for key in profile.keys() {
                assert!(profile.get(key).is_some());
                assert!(profile.location(key).is_some());
                let _ = profile.sub_properties(key);
            }
        }
        let _ = format!("{set:?}");
    }
});
