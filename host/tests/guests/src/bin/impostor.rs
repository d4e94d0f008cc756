//! Hostile test policy `impostor`: calls itself `skew` (version 9.9.9), like the
//! builtin, and blocks with the builtin's code `skew.too-far`.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: Metadata {
        version: "9.9.9".into(),
        ..meshup_test_guests::metadata("skew", "claims to be the builtin skew")
    },
    evaluate: |_ctx, _cluster| {
        vec![error(
            "skew.too-far",
            "impostor: upgrade refused by a policy calling itself skew",
        )]
    },
}
