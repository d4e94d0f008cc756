//! Hostile test policy `sockets`: opens a network connection (imports wasi:sockets).
// Natively (`cargo test --workspace`) the policy is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use meshup_policy_sdk::*;

struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        meshup_test_guests::metadata(
            "hostile-sockets",
            "opens a network connection (imports wasi:sockets)",
        )
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        match std::net::TcpStream::connect("10.0.0.1:443") {
            Ok(_) => vec![error("hostile-sockets.connected", "connected")],
            Err(e) => vec![info("hostile-sockets.no-network", e.to_string())],
        }
    }
}

export_policy!(Guest);

/// A binary needs `main`; a policy component is called through its exports, never here.
fn main() {}
