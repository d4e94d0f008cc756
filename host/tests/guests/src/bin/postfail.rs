//! Test policy `postfail`: a post-upgrade smoke test that always fails, so the
//! automatic rollback after a failed post-upgrade check can be tested end to end.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: Metadata {
        phases: vec![Phase::PostUpgrade],
        ..meshup_test_guests::metadata("postfail", "post-upgrade smoke test that always fails")
    },
    evaluate: |ctx, _cluster| {
        match &ctx.outcome {
            Some(o) if o.succeeded => vec![error(
                "postfail.smoke-test",
                format!(
                    "smoke test against {} failed (test policy)",
                    ctx.target_version
                ),
            )],
            _ => vec![],
        }
    },
}
