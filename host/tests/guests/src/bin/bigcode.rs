//! Hostile test policy `bigcode`: one finding whose code is 100 KiB (with the right prefix).
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata("bigcode", "returns a finding whose code is 100 KiB")
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        let code = format!("bigcode.{}", "x".repeat(100 * 1024 - 8));
        vec![info(&code, "a code nobody can type after --ignore")]
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
