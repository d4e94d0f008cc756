//! `profile-defaults`: values whose profile default changed between versions and the user did not set.

use meshup_policy_sdk::{values::*, *};

pub struct ProfileDefaults;

impl Policy for ProfileDefaults {
    fn metadata() -> Metadata {
        Metadata {
            name: "profile-defaults".into(),
            version: "0.1.0".into(),
            description: "Lists values whose profile default differs between the installed and the target bundle \
                          and that the user does not set: their behaviour changes silently with the upgrade."
                .into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            // The image tag is the release itself, not a behaviour change.
            default_config: r#"{"ignore": ["tag"]}"#.into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        if ctx.direction == Direction::Install || ctx.current_version.is_none() {
            return vec![];
        }
        let old = flatten(&parse_json(&ctx.profile_defaults_old));
        let new = flatten(&parse_json(&ctx.profile_defaults_new));
        let overlay = flatten(&parse_json(&ctx.overlay_new));
        let config = ctx.config();
        let ignored: Vec<&str> = config["ignore"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let from = ctx.current_version.as_deref().unwrap_or("?");
        let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .filter(|p| {
                old.get(*p) != new.get(*p)
                    && !emptied(&old, &new, p)
                    && !emptied(&new, &old, p)
                    && !touches(&overlay, p)
                    && !ignored.contains(&p.as_str())
            })
            .map(|p| {
                let (o, n) = (old.get(p), new.get(p));
                let msg = format!(
                    "default of {p} changes {} → {} ({from} → {})",
                    show(o),
                    show(n),
                    ctx.target_version
                );
                let f = if o.is_some() && n.is_some() {
                    warning("profile-defaults.changed", msg)
                } else {
                    info("profile-defaults.changed", msg)
                };
                let keep = o
                    .map(|v| format!("--set {p}={}", show(Some(v))))
                    .unwrap_or_else(|| format!("review {p}"));
                f.with_remediation(format!("to keep the old behaviour: {keep}"))
                    .with_subject(p.clone())
            })
            .collect()
    }
}

/// `p` is an empty mapping on one side whose entries the other side lists one by one
/// (`proxyMetadata: {}` against `proxyMetadata.DNS_AGENT`): those entries say it already.
fn emptied(
    a: &std::collections::BTreeMap<String, Value>,
    b: &std::collections::BTreeMap<String, Value>,
    p: &str,
) -> bool {
    a.get(p)
        .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
        && b.keys()
            .any(|k| k.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

export_policy!(ProfileDefaults);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    #[test]
    fn lists_changed_unset_defaults() {
        let mut ctx = context();
        ctx.profile_defaults_old =
            json!({"pilot":{"replicas":1,"env":{"A":"x"}},"telemetry":{"v2":false},"gone":1,"pm":{"DNS":""}})
                .to_string();
        ctx.profile_defaults_new =
            json!({"pilot":{"replicas":1,"env":{"A":"y"}},"telemetry":{"v2":true},"added":2,"pm":{}})
                .to_string();
        ctx.overlay_new = json!({"telemetry":{"v2":false}}).to_string();
        let f = ProfileDefaults::evaluate(&ctx, &FakeCluster::default());
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.subject.clone().unwrap(), f.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("added".to_string(), Severity::Info),
                ("gone".to_string(), Severity::Info),
                ("pilot.env.A".to_string(), Severity::Warning),
                ("pm.DNS".to_string(), Severity::Info)
            ]
        );
        assert!(f[2].message.contains("x → y"), "{}", f[2].message);
        assert!(
            f[2].remediation
                .as_deref()
                .unwrap()
                .contains("--set pilot.env.A=x")
        );
    }

    #[test]
    fn nothing_on_install() {
        let mut ctx = context();
        ctx.direction = Direction::Install;
        ctx.current_version = None;
        ctx.profile_defaults_new = json!({"a":1}).to_string();
        assert!(ProfileDefaults::evaluate(&ctx, &FakeCluster::default()).is_empty());
    }
}
