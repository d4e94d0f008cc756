//! RFC 3339 timestamps (the context's `now`), without a clock: policies get time only
//! from the context. Parsed by the shared vocabulary (jiff), like the host formats it.

/// Seconds since the Unix epoch for `2026-01-01T00:00:00Z`, `…T00:00:00.5+02:00`, etc.
pub use meshup_vocab::time::parse as parse_rfc3339;
