//! Hostile test policy `filesystem`: reads a file (imports wasi:filesystem).

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata(
        "hostile-filesystem",
        "reads a file (imports wasi:filesystem)",
    ),
    evaluate: |_ctx, _cluster| {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => vec![error("hostile-filesystem.read-file", s)],
            Err(e) => vec![info("hostile-filesystem.no-file", e.to_string())],
        }
    },
}
