//! Hostile test policy `bigmsg`: one finding whose message is 50 MiB (inside the
//! default 64 MiB memory cap), and a 1 MiB log line.
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata("bigmsg", "returns a 50 MiB finding message")
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        log(Level::Info, &"L".repeat(1 << 20));
        vec![warning("bigmsg.flood", "A".repeat(50 << 20))]
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
