//! Hostile test policy `flood`: returns 100,000 findings.

use meshup_policy_sdk::*;

pub struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile-flood".into(),
            version: "0.0.0".into(),
            description: "returns 100,000 findings".into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        (0..100_000)
            .map(|i| info("hostile-flood.flood", format!("finding {i}")))
            .collect()
    }
}

export_policy!(Guest);
