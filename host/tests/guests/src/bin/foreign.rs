//! Hostile test policy `foreign`: a finding under another policy's code (`skew.too-far`)
//! and one under its own.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("foreign", "reports under the skew policy's code"),
    evaluate: |_ctx, _cluster| {
        vec![
            error("skew.too-far", "foreign: blames skew"),
            info("foreign.own", "a finding under its own name"),
        ]
    },
}
