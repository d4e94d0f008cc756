//! Hostile test policy `sockets`: opens a network connection (imports wasi:sockets).

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata(
        "hostile-sockets",
        "opens a network connection (imports wasi:sockets)",
    ),
    evaluate: |_ctx, _cluster| {
        match std::net::TcpStream::connect("10.0.0.1:443") {
            Ok(_) => vec![error("hostile-sockets.connected", "connected")],
            Err(e) => vec![info("hostile-sockets.no-network", e.to_string())],
        }
    },
}
