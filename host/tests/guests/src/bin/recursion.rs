//! Hostile test policy `recursion`: recurses without bound.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata("hostile-recursion", "recurses without bound")
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        vec![info(
            "hostile-recursion.depth",
            format!("{}", deep(std::hint::black_box(1))),
        )]
    }
}

#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    deep(std::hint::black_box(n.wrapping_add(1))).wrapping_mul(3) ^ n
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
