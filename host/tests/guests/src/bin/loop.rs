//! Hostile test policy `loop`: spins forever.

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("hostile-loop", "spins forever"),
    evaluate: |_ctx, _cluster| {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    },
}
