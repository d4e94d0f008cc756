//! Hostile test policy `panic`: panics.

use meshup_policy_sdk::*;

pub struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile-panic".into(),
            version: "0.0.0".into(),
            description: "panics".into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        panic!("hostile guest panics on purpose")
    }
}

export_policy!(Guest);
