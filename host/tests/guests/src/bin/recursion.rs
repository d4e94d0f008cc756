//! Hostile test policy `recursion`: recurses without bound.

use meshup_policy_sdk::*;

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("hostile-recursion", "recurses without bound"),
    evaluate: |_ctx, _cluster| {
        vec![info(
            "hostile-recursion.depth",
            format!("{}", deep(std::hint::black_box(1))),
        )]
    },
}

#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    deep(std::hint::black_box(n.wrapping_add(1))).wrapping_mul(3) ^ n
}
