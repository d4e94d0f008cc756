//! Hostile test policy `undeclared`: reads Pods it did not declare.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            reads: vec![read("v1", "ConfigMap")],
            ..meshup_test_guests::metadata("hostile-undeclared", "reads Pods it did not declare")
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        match cluster.list("v1", "Pod", None, None) {
            Ok(p) => vec![info(
                "hostile-undeclared.read-allowed",
                format!("read {} pods", p.len()),
            )],
            Err(e) => vec![error("hostile-undeclared.read-refused", e)],
        }
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
