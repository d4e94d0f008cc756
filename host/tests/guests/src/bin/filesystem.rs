//! Hostile test policy `filesystem`: reads a file (imports wasi:filesystem).
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata(
            "hostile-filesystem",
            "reads a file (imports wasi:filesystem)",
        )
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => vec![error("hostile-filesystem.read-file", s)],
            Err(e) => vec![info("hostile-filesystem.no-file", e.to_string())],
        }
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
