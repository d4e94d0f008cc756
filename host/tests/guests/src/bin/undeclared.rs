//! Hostile test policy `undeclared`: reads Pods it did not declare.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: Metadata {
        reads: vec![read("v1", "ConfigMap")],
        ..meshup_test_guests::metadata("hostile-undeclared", "reads Pods it did not declare")
    },
    evaluate: |_ctx, cluster| {
        match cluster.list("v1", "Pod", None, None) {
            Ok(p) => vec![info(
                "hostile-undeclared.read-allowed",
                format!("read {} pods", p.len()),
            )],
            Err(e) => vec![error("hostile-undeclared.read-refused", e)],
        }
    },
}
