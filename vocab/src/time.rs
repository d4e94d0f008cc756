//! RFC 3339 time, by jiff: the host stamps a run with [`now`]; policies, which have no
//! clock, read it back with [`parse`] (jiff builds for `wasm32-wasip2` and parsing
//! needs no time-zone database).

use jiff::{Timestamp, Unit};

/// The current time as RFC 3339 UTC with whole seconds (`2026-11-25T11:40:00Z`).
pub fn now() -> String {
    format(Timestamp::now())
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2023-11-14T22:13:20Z`); `None` out of range.
pub fn format_unix(seconds: i64) -> Option<String> {
    Timestamp::from_second(seconds).ok().map(format)
}

fn format(t: Timestamp) -> String {
    // Truncated, not rounded: a stamp never lies in the future.
    t.round(
        jiff::TimestampRound::new()
            .smallest(Unit::Second)
            .mode(jiff::RoundMode::Trunc),
    )
    .unwrap_or(t)
    .to_string()
}

/// Seconds since the Unix epoch of `2026-01-01T00:00:00Z`, `…T00:00:00.5+02:00`, etc.
/// `None` for anything that is not RFC 3339 with an offset.
pub fn parse(text: &str) -> Option<i64> {
    text.trim().parse::<Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2026-01-01T00:00:00Z"), Some(1767225600));
        assert_eq!(parse("2026-01-01T02:00:00.250+02:00"), Some(1767225600));
        assert_eq!(parse("2026-01-01t00:00:00z"), Some(1767225600));
        assert_eq!(parse("2026-01-01"), None);
        assert_eq!(parse("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn formats_whole_seconds_in_utc() {
        assert_eq!(
            format_unix(1_700_000_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(format_unix(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        let n = now();
        assert_eq!(n.len(), 20, "{n}");
        assert!(n.ends_with('Z'));
        assert!(parse(&n).is_some());
    }
}
