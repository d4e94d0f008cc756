//! Hostile test policy `bigcode`: one finding whose code is 100 KiB (with the right prefix).

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("bigcode", "returns a finding whose code is 100 KiB"),
    evaluate: |_ctx, _cluster| {
        let code = format!("bigcode.{}", "x".repeat(100 * 1024 - 8));
        vec![info(&code, "a code nobody can type after --ignore")]
    },
}
