//! Admission: per-kind defaulting, validation, status the kubelet and
//! apiextensions server would write, and Istio-style sidecar injection.

mod defaults;
mod sidecar;
mod status;
mod validation;

pub use defaults::default;
pub use sidecar::inject_sidecar;
pub use status::{crd_status, pod_ready, pod_status};
pub use validation::validate;

pub const NODE_NAME: &str = "sim-node";
pub const NODE_IP: &str = "10.0.0.10";

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}
