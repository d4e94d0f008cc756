//! `skew`: the installed and target control planes are at most N minor versions apart (default 1).

use meshup_policy_sdk::*;

pub struct Skew;

impl Policy for Skew {
    fn metadata() -> Metadata {
        Metadata {
            name: "skew".into(),
            version: "0.1.0".into(),
            description: "Refuses upgrades and downgrades that move the control plane more than `max_minor` \
                          minor versions (default 1) at once: Istio supports only one minor step in place."
                .into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: r#"{"max_minor":1}"#.into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        check(ctx)
    }
}

export_policy!(Skew);

/// The skew check as a pure function of the context.
pub fn check(ctx: &Context) -> Vec<Finding> {
    let Some(current) = ctx.current_version.as_deref() else {
        return vec![];
    };
    let max = ctx.config_i64("max_minor", 1).max(0);
    let (Some(from), Some(to)) = (Version::parse(current), Version::parse(&ctx.target_version))
    else {
        return vec![
            warning(
                "skew.unknown-version",
                format!(
                    "cannot compare versions {current:?} and {:?}",
                    ctx.target_version
                ),
            )
            .with_remediation("check the installed control plane's image tags"),
        ];
    };
    let distance = from.minor_distance(&to);
    if distance.abs() <= max {
        return vec![];
    }
    let way = if distance > 0 { "upgrade" } else { "downgrade" };
    let step = if distance > 0 {
        format!("{}.{}", from.major, from.minor + max as u64)
    } else {
        format!("{}.{}", from.major, from.minor.saturating_sub(max as u64))
    };
    vec![
        error(
            "skew.too-far",
            format!(
                "{way} from {current} to {} crosses {} minor versions; at most {max} is supported in place",
                ctx.target_version,
                distance.abs()
            ),
        )
        .with_remediation(format!("{way} one step at a time: first to the latest {step}.x release"))
        .with_subject(format!("control plane {}", ctx.namespace)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    fn run(current: Option<&str>, target: &str, config: &str) -> Vec<Finding> {
        let mut ctx = context();
        ctx.current_version = current.map(Into::into);
        ctx.target_version = target.into();
        ctx.config = config.into();
        Skew::evaluate(&ctx, &FakeCluster::default())
    }

    #[test]
    fn one_minor_up_or_down_is_fine() {
        assert!(run(Some("1.7.8"), "1.8.6", "{}").is_empty());
        assert!(run(Some("1.8.6"), "1.7.8", "{}").is_empty());
        assert!(run(Some("1.8.1"), "1.8.6", "{}").is_empty());
        assert!(run(None, "1.9.0", "{}").is_empty());
        assert!(run(Some("1.8-dev"), "1.9.0-beta.1", "{}").is_empty());
    }

    #[test]
    fn two_minors_is_too_far_both_ways() {
        let up = run(Some("1.7.8"), "1.9.0", "{}");
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].code, "skew.too-far");
        assert_eq!(up[0].severity, Severity::Error);
        assert!(up[0].remediation.as_deref().unwrap().contains("1.8.x"));
        let down = run(Some("1.9.0"), "1.7.8", "{}");
        assert_eq!(down[0].code, "skew.too-far");
        assert!(down[0].message.starts_with("downgrade"));
    }

    #[test]
    fn configurable_and_unknown() {
        assert!(run(Some("1.7.8"), "1.9.0", r#"{"max_minor":2}"#).is_empty());
        assert_eq!(
            run(Some("1.7.8"), "1.8.0", r#"{"max_minor":0}"#)[0].code,
            "skew.too-far"
        );
        assert_eq!(
            run(Some("latest"), "1.8.0", "{}")[0].code,
            "skew.unknown-version"
        );
    }
}
