//! Test policy `old-wit`: a well-behaved policy built against the previous WIT package,
//! `meshup:policy@0.2.0` (a copy of it is in `wit-0.2.0/`), as a policy built with
//! meshup-policy-sdk 0.1 is. The host must refuse it at load, naming both versions.

wit_bindgen::generate!({
    world: "policy",
    path: "wit-0.2.0",
});

use meshup::policy::log::{Level, log};
use meshup::policy::types::Phase;

struct OldWit;

impl Guest for OldWit {
    fn metadata() -> Metadata {
        Metadata {
            name: "old-wit".into(),
            version: "0.0.0".into(),
            description: "built for meshup:policy@0.2.0".into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(_context: Context) -> Vec<Finding> {
        log(Level::Info, "old-wit ran");
        vec![]
    }
}

export!(OldWit);

/// Never called in a component (see the crate's README).
fn main() {
    let _ = (<OldWit as Guest>::metadata, <OldWit as Guest>::evaluate);
}
