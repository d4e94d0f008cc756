//! `revision`: revision-based (canary) installs are refused; meshup upgrades in place.

use meshup_policy_sdk::*;

pub struct Revision;

impl Policy for Revision {
    fn metadata() -> Metadata {
        Metadata {
            name: "revision".into(),
            version: "0.1.0".into(),
            description: "Refuses control planes installed with a revision (`istio.io/rev` other than `default`): \
                          meshup upgrades in place, revisioned installs are upgraded by canary."
                .into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        let rev = ctx.revision.trim();
        if rev.is_empty() || rev == "default" {
            return vec![];
        }
        vec![
            error(
                "revision.unsupported",
                format!("the control plane in {} is installed with revision {rev:?}; meshup only upgrades non-revisioned installs in place", ctx.namespace),
            )
            .with_remediation(format!(
                "upgrade revision {rev:?} with a canary (istioctl install --revision …), or reinstall without a revision"
            ))
            .with_subject(format!("revision {rev}")),
        ]
    }
}

export_policy!(Revision);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    #[test]
    fn default_and_none_pass_named_revision_refused() {
        let mut ctx = context();
        for ok in ["default", "", " "] {
            ctx.revision = ok.into();
            assert!(
                Revision::evaluate(&ctx, &FakeCluster::default()).is_empty(),
                "{ok:?}"
            );
        }
        ctx.revision = "1-8-6".into();
        let f = Revision::evaluate(&ctx, &FakeCluster::default());
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            ("revision.unsupported", Severity::Error)
        );
    }
}
