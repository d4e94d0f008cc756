//! Hostile test policy `flood`: returns 100,000 findings.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("hostile-flood", "returns 100,000 findings"),
    evaluate: |_ctx, _cluster| {
        (0..100_000)
            .map(|i| info("hostile-flood.flood", format!("finding {i}")))
            .collect()
    },
}
