//! Hostile test policy `foreign`: a finding under another policy's code (`skew.too-far`)
//! and one under its own.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata("foreign", "reports under the skew policy's code")
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        vec![
            error("skew.too-far", "foreign: blames skew"),
            info("foreign.own", "a finding under its own name"),
        ]
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
