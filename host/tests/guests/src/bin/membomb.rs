//! Hostile test policy `membomb`: allocates until memory runs out.

meshup_test_guests::guest! {
    metadata: meshup_test_guests::metadata("hostile-membomb", "allocates until memory runs out"),
    evaluate: |_ctx, _cluster| {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    },
}
