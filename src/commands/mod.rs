//! The subcommands that manage MFA devices and console sign-in: `register`,
//! `unregister` and `console`, with what they share.

pub mod card;
pub mod console;
pub mod register;
pub mod unregister;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::cache::Cache;
use crate::error::Error;
use crate::otp::StepLedger;

/// Characters left as they are in a URL component: RFC 3986's unreserved ones.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `value` for use as a query value or path segment of a URL.
pub fn url_encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, URL_COMPONENT).to_string()
}

/// Returns the shared record of used time steps.
pub fn step_ledger() -> Result<StepLedger, Error> {
    StepLedger::new(Cache::default_dir()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encode_keeps_unreserved_only() {
        assert_eq!(url_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(url_encode("a b"), "a%20b");
        assert_eq!(
            url_encode("a+b/c=d&e?f#g:h@i"),
            "a%2Bb%2Fc%3Dd%26e%3Ff%23g%3Ah%40i"
        );
        assert_eq!(url_encode("{\"k\":\"v\"}"), "%7B%22k%22%3A%22v%22%7D");
        assert_eq!(url_encode("ü"), "%C3%BC");
    }
}
