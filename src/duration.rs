//! Durations in the syntax of Go's `time.ParseDuration`, which the original
//! awsu used for `--duration` and `--grace`: `1h`, `45m`, `1h30m`, `90s`,
//! `1.5h`, `500ms`.

use std::time::Duration;

/// Parses a Go-style duration such as `1h30m`. Negative durations and bare
/// numbers other than `0` are rejected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("invalid duration '{text}': use a number and a unit, as in 1h, 45m, 1h30m or 90s")
    };

    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() || trimmed.starts_with('-') {
        return Err(invalid());
    }
    let mut rest = trimmed.strip_prefix('+').unwrap_or(trimmed);

    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, after_number) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }

        let unit_end = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(invalid()),
        };

        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut fraction_nanos: u128 = 0;
        let mut scale: u128 = 1;
        for digit in fraction.chars().take(18) {
            fraction_nanos = fraction_nanos * 10 + u128::from(digit.to_digit(10).unwrap_or(0));
            scale *= 10;
        }

        total_nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|nanos| nanos.checked_add(fraction_nanos * unit_nanos / scale))
            .and_then(|nanos| total_nanos.checked_add(nanos))
            .ok_or_else(invalid)?;
        rest = after_unit;
    }

    let seconds = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| invalid())?;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(seconds, nanos))
}

/// Formats a duration in the same syntax, to whole seconds: `1h`, `1h30m`, `15m20s`.
pub fn format(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return "0s".to_owned();
    }

    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 {
        text.push_str(&format!("{seconds}s"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_go_forms() {
        let cases = [
            ("1h", 3600),
            ("45m", 2700),
            ("1h30m", 5400),
            ("90s", 90),
            ("1.5h", 5400),
            ("2h45m10s", 9910),
            ("0", 0),
            ("+15m", 900),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn parse_rejects_malformed_input() {
        for text in [
            "",
            "1",
            "h",
            "-1h",
            "1x",
            "1.2.3h",
            "1h-5m",
            ".h",
            "99999999999999999999h",
        ] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn parse_error_names_value() {
        let message = parse("ten minutes").unwrap_err();
        assert!(message.contains("'ten minutes'"), "{message}");
    }

    #[test]
    fn format_round_trips() {
        for text in ["1h", "45m", "1h30m", "90s", "12h", "15m20s"] {
            let duration = parse(text).unwrap();
            assert_eq!(parse(&format(duration)).unwrap(), duration, "{text}");
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }
}
