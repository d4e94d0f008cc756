//! Hostile test policy `foreign`: a finding under another policy's code (`skew.too-far`)
//! and one under its own.

use meshup_policy_sdk::*;

pub struct Guest;

impl Policy for Guest {
    fn metadata() -> Metadata {
        Metadata {
            name: "foreign".into(),
            version: "0.0.0".into(),
            description: "reports under the skew policy's code".into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let _ = (ctx, cluster);
        vec![
            error("skew.too-far", "foreign: blames skew"),
            info("foreign.own", "a finding under its own name"),
        ]
    }
}

export_policy!(Guest);
