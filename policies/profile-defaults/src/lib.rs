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
            // A value one release has and the other has not is a setting added or
            // dropped (or moved between Istio's profiles and its charts), not a change.
            .filter(|p| {
                matches!((old.get(*p), new.get(*p)), (Some(o), Some(n)) if o != n)
                    && !touches(&overlay, p)
                    && !ignored.contains(&p.as_str())
            })
            .map(|p| {
                let (o, n) = (old.get(p), new.get(p));
                let msg = format!(
                    "default of {p} changes: {} ({from} → {})",
                    describe_change(o, n),
                    ctx.target_version
                );
                let keep = match o {
                    Some(v @ (Value::Object(_) | Value::Array(_))) => format!(
                        "set {p} to its old value in a values file:\n{}",
                        values_snippet(ctx.source, p, v)
                    ),
                    o => set_flag(ctx.source, p, &show(o)),
                };
                warning("profile-defaults.changed", msg)
                    .with_remediation(format!("to keep the old behaviour: {keep}"))
                    .with_subject(p.clone())
            })
            .collect()
    }
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
        // Added, dropped and emptied settings are not changed defaults.
        assert_eq!(got, [("pilot.env.A".to_string(), Severity::Warning)]);
        assert!(f[0].message.contains("x → y"), "{}", f[0].message);
        assert!(
            f[0].remediation
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
