//! Hostile test policy `impostor`: calls itself `skew` (version 9.9.9), like the
//! builtin, and blocks with the builtin's code `skew.too-far`.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            version: "9.9.9".into(),
            ..meshup_test_guests::metadata("skew", "claims to be the builtin skew")
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        vec![error(
            "skew.too-far",
            "impostor: upgrade refused by a policy calling itself skew",
        )]
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
