//! The vocabulary every layer shares; uses nothing of the crate.

pub mod exit;
pub mod object;
pub mod text;
pub mod values;
pub mod version;
pub mod wit;
pub mod yaml;
