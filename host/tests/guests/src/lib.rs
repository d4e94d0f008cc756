//! What the hostile test guests share (each guest is one binary in `src/bin/`).

pub use meshup_policy_sdk as sdk;
use meshup_policy_sdk::{Metadata, Phase};

/// The metadata of a guest that runs at precheck, reads nothing and has no config;
/// a guest that needs more overrides fields (`Metadata { reads, ..metadata(..) }`).
pub fn metadata(name: &str, description: &str) -> Metadata {
    Metadata {
        name: name.into(),
        version: "0.0.0".into(),
        description: description.into(),
        phases: vec![Phase::Precheck],
        reads: vec![],
        default_config: "{}".into(),
    }
}

/// One guest binary: its metadata and what its `evaluate` does, exported as a policy
/// component (plus the `main` a binary needs).
///
/// ```ignore
/// meshup_test_guests::guest! {
///     metadata: meshup_test_guests::metadata("hostile-panic", "panics"),
///     evaluate: |_ctx, _cluster| panic!("on purpose"),
/// }
/// ```
#[macro_export]
macro_rules! guest {
    (metadata: $metadata:expr, evaluate: $evaluate:expr $(,)?) => {
        // Only named, never built: the trait's functions take no `self`.
        #[allow(dead_code)]
        struct Guest;

        impl $crate::sdk::Policy for Guest {
            fn metadata() -> $crate::sdk::Metadata {
                $metadata
            }

            fn evaluate(
                ctx: &$crate::sdk::Context,
                cluster: &dyn $crate::sdk::Cluster,
            ) -> ::std::vec::Vec<$crate::sdk::Finding> {
                let evaluate: fn(
                    &$crate::sdk::Context,
                    &dyn $crate::sdk::Cluster,
                ) -> ::std::vec::Vec<$crate::sdk::Finding> = $evaluate;
                evaluate(ctx, cluster)
            }
        }

        $crate::sdk::export_policy!(Guest);

        /// Never called in a component. Natively it names the policy, so the policy and
        /// what it uses count as used there too (`cargo clippy --workspace`).
        fn main() {
            let _ = (
                <Guest as $crate::sdk::Policy>::metadata,
                <Guest as $crate::sdk::Policy>::evaluate,
            );
        }
    };
}
