//! What the hostile test guests share (each guest is one binary in `src/bin/`).

use meshup_policy_sdk::{Metadata, Phase};

/// The metadata of a guest that runs at precheck, reads nothing and has no config;
/// a guest that needs more overrides fields (`Metadata { reads, ..metadata(..) }`).
pub fn metadata(name: &str, description: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "0.0.0".into(),
        description: description.into(),
        phases: vec![Phase::Precheck],
        reads: vec![],
        default_config: "{}".into(),
    }
}
