//! Test policy `postfail`: a post-upgrade smoke test that always fails, so the
//! automatic rollback after a failed post-upgrade check can be tested end to end.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            phases: vec![Phase::PostUpgrade],
            ..meshup_test_guests::metadata("postfail", "post-upgrade smoke test that always fails")
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        match &ctx.outcome {
            Some(o) if o.succeeded => vec![error(
                "postfail.smoke-test",
                format!(
                    "smoke test against {} failed (test policy)",
                    ctx.target_version
                ),
            )],
            _ => vec![],
        }
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
