//! The default policies embedded in the binary (built by `host/build.rs`).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component bytes of `builtin:NAME`.
pub fn get(name: &str) -> Option<&'static [u8]> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Names of all default policies, in evaluation order.
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(n, _)| *n)
}
