//! Hostile test policy `bigmsg`: one finding whose message is 50 MiB (inside the
//! default 64 MiB memory cap), and a 1 MiB log line.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("bigmsg", "returns a 50 MiB finding message"),
    evaluate: |_ctx, _cluster| {
        log(Level::Info, &"L".repeat(1 << 20));
        vec![warning("bigmsg.flood", "A".repeat(50 << 20))]
    },
}
