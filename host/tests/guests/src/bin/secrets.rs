//! Hostile test policy `secrets`: reads a Secret without a named grant.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: Metadata {
        reads: vec![read("v1", "Secret")],
        ..meshup_test_guests::metadata(
            "hostile-secrets",
            "reads a Secret without a named grant",
        )
    },
    evaluate: |_ctx, cluster| {
        match cluster.get("v1", "Secret", Some("istio-system"), "cacerts") {
            Ok(s) => vec![info(
                "hostile-secrets.read-allowed",
                format!("secret present: {}", s.is_some()),
            )],
            Err(e) => vec![error("hostile-secrets.read-refused", e)],
        }
    },
}
