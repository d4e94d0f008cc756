//! `values-revert`: `-f`/`--set` values of the last install that this run's overlay would revert.

use meshup_policy_sdk::{values::*, *};

pub struct ValuesRevert;

impl Policy for ValuesRevert {
    fn metadata() -> Metadata {
        Metadata {
            name: "values-revert".into(),
            version: "0.1.0".into(),
            description: "Warns about values the user set with -f/--set at the last install that this run does \
                          not set again: they would silently go back to the profile default."
                .into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        let old = flatten(&parse_json(&ctx.overlay_old));
        let new_overlay = flatten(&parse_json(&ctx.overlay_new));
        let new_values = flatten(&parse_json(&ctx.values_new));
        old.iter()
            // Only what this run changes: a value the new profile already has stays.
            // A Kubernetes setting the new values hold with more beside it is kept.
            .filter(|(p, v)| {
                !touches(&new_overlay, p) && !new_values.get(*p).is_some_and(|n| covers(n, v))
            })
            .map(|(p, v)| {
                let now = new_values.get(p);
                let (message, keep) = match v {
                    // A mapping or a list: what differs in it, and a values file to keep it.
                    Value::Object(_) | Value::Array(_) => (
                        format!("{p} was set by the last install; this run does not set it, so it changes: {}", describe_change(Some(v), now)),
                        format!("keep it in a values file (or the same -f file as last time):\n{}", values_snippet(ctx.source, p, v)),
                    ),
                    _ => (
                        format!("{p} was set to {} by the last install; this run does not set it, so it becomes {}", show(Some(v)), show(now)),
                        format!("keep it with {} (or the same -f file as last time)", set_flag(ctx.source, p, &show(Some(v)))),
                    ),
                };
                warning("values-revert.reverted", message)
                    .with_remediation(keep)
                    .with_subject(p.clone())
            })
            .collect()
    }
}

export_policy!(ValuesRevert);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    #[test]
    fn reverted_values_only() {
        let mut ctx = context();
        ctx.overlay_old = json!({"pilot":{"replicas":3,"env":{"X":"1"}},"meshConfig":{"accessLogFile":"/dev/stdout"}}).to_string();
        ctx.overlay_new =
            json!({"pilot":{"replicas":2},"meshConfig":{"accessLogFile":"/dev/stdout"}})
                .to_string();
        ctx.values_new = json!({"pilot":{"replicas":2,"env":{}}}).to_string();
        let f = ValuesRevert::evaluate(&ctx, &FakeCluster::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].subject.as_deref(), Some("pilot.env.X"));
        assert!(f[0].message.contains("becomes (unset)"), "{}", f[0].message);
        assert!(
            f[0].remediation
                .as_deref()
                .unwrap()
                .contains("--set pilot.env.X=1")
        );
    }

    #[test]
    fn a_structured_value_is_kept_with_a_values_file() {
        let mut ctx = context();
        let service = json!({"ports": [{"name": "tcp", "port": 31400}]});
        ctx.overlay_old = json!({"components": {"ingressGateways": [{"name": "gw", "k8s": {"service": service}}]}}).to_string();
        ctx.overlay_new = json!({}).to_string();
        ctx.values_new = json!({"components": {"ingressGateways": [{"name": "gw", "k8s": {"service": {"ports": []}}}]}}).to_string();
        let f = ValuesRevert::evaluate(&ctx, &FakeCluster::default());
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].message.contains("ports: [name:tcp] removed"),
            "{}",
            f[0].message
        );
        let keep = f[0].remediation.as_deref().unwrap();
        assert!(
            keep.contains("kind: IstioOperator")
                && keep.contains("- name: \"tcp\"")
                && !keep.contains("--set"),
            "{keep}"
        );
    }

    #[test]
    fn nothing_when_the_new_default_is_the_old_value() {
        let mut ctx = context();
        ctx.overlay_old = json!({"values":{"pilot":{"traceSampling":5.0}}}).to_string();
        ctx.overlay_new = json!({}).to_string();
        ctx.values_new = json!({"values":{"pilot":{"traceSampling":5.0}}}).to_string();
        assert!(ValuesRevert::evaluate(&ctx, &FakeCluster::default()).is_empty());
    }

    #[test]
    fn nothing_when_overlays_agree() {
        let mut ctx = context();
        ctx.overlay_old = json!({"a":{"b":1}}).to_string();
        ctx.overlay_new = json!({"a":{"b":1}}).to_string();
        assert!(ValuesRevert::evaluate(&ctx, &FakeCluster::default()).is_empty());
    }
}
