//! AWS credentials as awsu passes them between layers, caches and exports them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A secret string whose `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the secret itself, for the few places that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(..)")
    }
}

/// An access key pair, with a session token and expiration when it is temporary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
    /// Expiration in seconds since the Unix epoch, as STS returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
}

impl Credentials {
    /// Tells whether these are temporary credentials (they carry a session token).
    pub fn is_temporary(&self) -> bool {
        self.session_token.is_some()
    }

    /// Tells whether the credentials stay valid for at least `grace` from `now`.
    /// Credentials without an expiration never expire.
    pub fn valid_for(&self, grace: Duration, now: SystemTime) -> bool {
        match self.expiration {
            None => true,
            Some(expiration) => {
                unix_seconds(now).saturating_add(grace.as_secs() as i64) < expiration
            }
        }
    }

    /// Returns the expiration as an RFC 3339 timestamp in UTC.
    pub fn expiration_rfc3339(&self) -> Option<String> {
        self.expiration.map(format_rfc3339)
    }
}

/// Converts a system time to whole seconds since the Unix epoch.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(elapsed) => elapsed.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, e.g. `2026-12-04T20:15:00Z`.
pub fn format_rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day),
/// after Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temporary(expiration: i64) -> Credentials {
        Credentials {
            access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("session-token-value")),
            expiration: Some(expiration),
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", temporary(0));
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(!text.contains("session-token-value"), "{text}");
        assert!(text.contains("ASIAIOSFODNN7EXAMPLE"), "{text}");
    }

    #[test]
    fn validity_respects_grace() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let credentials = temporary(1_000_000 + 3600);
        assert!(credentials.valid_for(Duration::from_secs(45 * 60), now));
        assert!(!credentials.valid_for(Duration::from_secs(3600), now));
        assert!(!credentials.valid_for(Duration::from_secs(3601), now));
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_796_415_300), "2026-12-04T20:15:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
