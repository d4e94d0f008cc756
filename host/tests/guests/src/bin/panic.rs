//! Hostile test policy `panic`: panics.

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("hostile-panic", "panics"),
    evaluate: |_ctx, _cluster| {
        panic!("hostile guest panics on purpose")
    },
}
