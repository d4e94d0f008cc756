//! Example custom policy `change-freeze`: blocks upgrades while a ConfigMap says the mesh is frozen.
//!
//! ```yaml
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: mesh-freeze, namespace: istio-system}
//! data: {frozen: "true", until: "2026-12-01T00:00:00Z", reason: "year-end freeze"}
//! ```

use meshup_policy_sdk::*;

pub struct ChangeFreeze;

impl Policy for ChangeFreeze {
    fn metadata() -> Metadata {
        Metadata {
            name: "change-freeze".into(),
            version: "0.1.0".into(),
            description: "Blocks control-plane changes while the ConfigMap named in the config (namespace/name) has \
                          data.frozen \"true\" and, if set, data.until (RFC 3339) is still in the future."
                .into(),
            phases: vec![Phase::Precheck, Phase::PreUpgrade],
            reads: vec![read("v1", "ConfigMap")],
            default_config: r#"{"namespace":"istio-system","name":"mesh-freeze"}"#.into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let ns = ctx.config_str("namespace", "istio-system");
        let name = ctx.config_str("name", "mesh-freeze");
        let subject = format!("ConfigMap {ns}/{name}");
        let cm = match cluster.get("v1", "ConfigMap", Some(&ns), &name) {
            Ok(Some(cm)) => cm,
            Ok(None) => return vec![],
            Err(e) => {
                return vec![
                    error(
                        "change-freeze.unreadable",
                        format!("cannot read {subject}: {e}"),
                    )
                    .with_remediation(format!(
                        "grant change-freeze a read of v1 ConfigMap {name} in {ns}"
                    ))
                    .with_subject(subject),
                ];
            }
        };
        if obj::str_at(&cm, "data.frozen").map(str::trim) != Some("true") {
            return vec![];
        }
        let reason = obj::str_at(&cm, "data.reason").unwrap_or("no reason given");
        if let Some(until) = obj::str_at(&cm, "data.until") {
            match (time::parse_rfc3339(until), time::parse_rfc3339(&ctx.now)) {
                (Some(u), Some(now)) if now >= u => {
                    return vec![
                        info(
                            "change-freeze.expired",
                            format!("the change freeze ({reason}) ended at {until}"),
                        )
                        .with_subject(subject),
                    ];
                }
                (Some(_), Some(_)) => {}
                _ => {
                    return vec![
                        error(
                            "change-freeze.invalid",
                            format!(
                                "cannot compare until={until:?} with now={:?} (RFC 3339 expected)",
                                ctx.now
                            ),
                        )
                        .with_subject(subject),
                    ];
                }
            }
        }
        let until = obj::str_at(&cm, "data.until")
            .map(|u| format!(" until {u}"))
            .unwrap_or_default();
        vec![error("change-freeze.frozen", format!("the mesh is frozen{until}: {reason}"))
            .with_remediation(format!("wait for the freeze to end, or ask its owner to set data.frozen to \"false\" in {subject}"))
            .with_subject(subject)]
    }
}

export_policy!(ChangeFreeze);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    fn freeze(data: Value) -> FakeCluster {
        FakeCluster::new(vec![
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"mesh-freeze","namespace":"istio-system"},"data":data}),
        ])
    }
    fn codes(c: &FakeCluster, now: &str) -> Vec<String> {
        let mut ctx = context();
        ctx.now = now.into();
        ChangeFreeze::evaluate(&ctx, c)
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    #[test]
    fn frozen_until_a_time() {
        let c = freeze(json!({"frozen":"true","until":"2026-12-01T00:00:00Z","reason":"year end"}));
        assert_eq!(codes(&c, "2026-11-30T23:59:59Z"), ["change-freeze.frozen"]);
        assert_eq!(
            codes(&c, "2026-12-01T01:00:00+01:00"),
            ["change-freeze.expired"]
        );
    }

    #[test]
    fn not_frozen_absent_or_denied() {
        assert!(codes(&freeze(json!({"frozen":"false"})), "2026-01-01T00:00:00Z").is_empty());
        assert!(codes(&FakeCluster::default(), "2026-01-01T00:00:00Z").is_empty());
        assert_eq!(
            codes(&freeze(json!({"frozen":"true"})), "2026-01-01T00:00:00Z"),
            ["change-freeze.frozen"]
        );
        let denied = FakeCluster {
            deny: Some("not granted".into()),
            ..Default::default()
        };
        assert_eq!(
            codes(&denied, "2026-01-01T00:00:00Z"),
            ["change-freeze.unreadable"]
        );
    }
}
