//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

use awsu_profile::{Error, ProfileSet};

pub const CONFIG: &str = "/home/user/.aws/config";
pub const CREDENTIALS: &str = "/home/user/.aws/credentials";

pub fn parse_both(config: &str, credentials: &str) -> ProfileSet {
    awsu_profile::parse(
        config,
        Path::new(CONFIG),
        credentials,
        Path::new(CREDENTIALS),
    )
    .unwrap_or_else(|error| panic!("parse failed: {error}"))
}

pub fn parse_config(config: &str) -> ProfileSet {
    parse_both(config, "")
}

pub fn parse_credentials(credentials: &str) -> ProfileSet {
    parse_both("", credentials)
}

/// Returns the file, line and message of the syntax error that parsing must produce.
pub fn syntax_error(config: &str, credentials: &str) -> (String, usize, String) {
    let result = awsu_profile::parse(
        config,
        Path::new(CONFIG),
        credentials,
        Path::new(CREDENTIALS),
    );
    match result {
        Err(Error::Syntax {
            file,
            line,
            message,
        }) => (file.display().to_string(), line, message),
        Err(other) => panic!("expected a syntax error, got {other}"),
        Ok(set) => panic!("expected a syntax error, got {set:?}"),
    }
}

/// Returns the profile names in order.
pub fn names(set: &ProfileSet) -> Vec<&str> {
    set.names().collect()
}

/// Returns the properties of a profile as (key, value) pairs in key order.
pub fn properties<'a>(set: &'a ProfileSet, name: &str) -> Vec<(&'a str, &'a str)> {
    let profile = set
        .profile(name)
        .unwrap_or_else(|| panic!("profile {name} missing from {:?}", names(set)));
    profile
        .keys()
        .map(|key| (key, profile.get(key).expect("listed key has a value")))
        .collect()
}
