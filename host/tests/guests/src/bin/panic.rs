//! Hostile test policy `panic`: panics.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata("hostile-panic", "panics")
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        panic!("hostile guest panics on purpose")
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
