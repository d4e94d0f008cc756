//! Hostile test policy `secrets`: reads a Secret without a named grant.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            reads: vec![read("v1", "Secret")],
            ..meshup_test_guests::metadata(
                "hostile-secrets",
                "reads a Secret without a named grant",
            )
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        match cluster.get("v1", "Secret", Some("istio-system"), "cacerts") {
            Ok(s) => vec![info(
                "hostile-secrets.read-allowed",
                format!("secret present: {}", s.is_some()),
            )],
            Err(e) => vec![error("hostile-secrets.read-refused", e)],
        }
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
