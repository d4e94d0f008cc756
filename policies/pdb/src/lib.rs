//! `pdb`: each control-plane component runs ≥2 replicas with a PodDisruptionBudget allowing ≥1 disruption.

use meshup_policy_sdk::*;

pub struct Pdb;

impl Policy for Pdb {
    fn metadata() -> Metadata {
        Metadata {
            name: "pdb".into(),
            version: "0.1.0".into(),
            description: "Warns when a control-plane Deployment has fewer than 2 replicas, no PodDisruptionBudget, \
                          or a budget that allows no disruption: the rollout or node drains may drop traffic."
                .into(),
            phases: vec![Phase::Precheck],
            reads: vec![read("apps/v1", "Deployment"), read("policy/v1", "PodDisruptionBudget")],
            default_config: r#"{"min_replicas":2}"#.into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let ns = ctx.namespace.as_str();
        let min_replicas = ctx.config_i64("min_replicas", 2);
        let (deployments, pdbs) = match (
            cluster.list("apps/v1", "Deployment", Some(ns), None),
            cluster.list("policy/v1", "PodDisruptionBudget", Some(ns), None),
        ) {
            (Ok(d), Ok(p)) => (d, p),
            (Err(e), _) | (_, Err(e)) => {
                return vec![warning("pdb.unreadable", format!("cannot read Deployments or PodDisruptionBudgets in {ns}: {e}"))
                    .with_remediation("grant the pdb policy reads of apps/v1 Deployment and policy/v1 PodDisruptionBudget")];
            }
        };
        let mut out = vec![];
        for comp in ctx
            .components
            .iter()
            .filter(|c| c.role == ComponentRole::ControlPlane)
        {
            let Some(dep) = deployments.iter().find(|d| obj::name(d) == comp.name) else {
                continue; // not installed yet: nothing can drop
            };
            let subject = obj::subject(dep);
            let replicas = obj::i64_at(dep, "spec.replicas").unwrap_or(1);
            if replicas < min_replicas {
                out.push(
                    warning("pdb.replicas", format!("{} runs {replicas} replica(s); while it restarts, sidecars cannot get configuration or certificates and traffic may drop", comp.name))
                        .with_remediation(format!("scale to at least {min_replicas}: {}", scale_flag(ctx, comp, min_replicas)))
                        .with_subject(subject.clone()),
                );
            }
            let labels = obj::at(dep, "spec.template.metadata.labels")
                .cloned()
                .unwrap_or_default();
            let pod = json!({"metadata": {"labels": labels}});
            let budget = pdbs.iter().find(|p| {
                obj::at(p, "spec.selector.matchLabels")
                    .is_some_and(|s| obj::matches_labels(&pod, s))
            });
            match budget {
                None => out.push(
                    warning("pdb.missing", format!("no PodDisruptionBudget selects the pods of {}; a drain during the upgrade may evict every replica", comp.name))
                        .with_remediation(budget_flag(ctx, comp))
                        .with_subject(subject),
                ),
                Some(pdb) => {
                    let allowed = disruptions_allowed(pdb, replicas);
                    if allowed < 1 {
                        out.push(
                            warning("pdb.no-disruption", format!("{} allows {allowed} disruption(s) of {}: node drains will block and the rollout may stall", obj::subject(pdb), comp.name))
                                .with_remediation("raise replicas above minAvailable, or set maxUnavailable: 1")
                                .with_subject(obj::subject(pdb)),
                        );
                    }
                }
            }
        }
        out
    }
}

/// How the control plane gets more replicas, in the language of the target's source: the
/// IstioOperator's replica count, or the istiod chart's values (its HPA's minimum while
/// autoscaling is on, as it is by default, else its replica count).
fn scale_flag(ctx: &Context, comp: &Component, n: i64) -> String {
    match ctx.source {
        ReleaseSource::Charts => format!(
            "--set {r}:autoscaleMin={n} (with autoscaling off: --set {r}:replicaCount={n})",
            r = comp.release
        ),
        _ => format!("--set components.pilot.k8s.replicaCount={n}"),
    }
}

/// How the control plane gets a PodDisruptionBudget: the IstioOperator's global switch, or
/// (the istiod chart renders one only for more than one replica) more replicas.
fn budget_flag(ctx: &Context, comp: &Component) -> String {
    match ctx.source {
        ReleaseSource::Charts => format!(
            "the {} chart renders its PodDisruptionBudget for more than one replica: {}",
            comp.release,
            scale_flag(ctx, comp, 2)
        ),
        _ => "enable the PodDisruptionBudget: --set values.global.defaultPodDisruptionBudget.enabled=true"
            .into(),
    }
}

export_policy!(Pdb);

/// Disruptions a budget allows: its status if reported, else computed from its spec.
pub fn disruptions_allowed(pdb: &Value, replicas: i64) -> i64 {
    if let Some(n) = obj::i64_at(pdb, "status.disruptionsAllowed") {
        return n;
    }
    let count = |v: &Value, round_up: bool| -> Option<i64> {
        match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => {
                let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
                let x = replicas * pct;
                Some(if round_up { (x + 99) / 100 } else { x / 100 })
            }
            _ => None,
        }
    };
    if let Some(max) = obj::at(pdb, "spec.maxUnavailable").and_then(|v| count(v, true)) {
        return max.min(replicas);
    }
    if let Some(min) = obj::at(pdb, "spec.minAvailable").and_then(|v| count(v, true)) {
        return (replicas - min).max(0);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, charts_context, context};

    fn istiod(replicas: i64) -> Value {
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"istiod","namespace":"istio-system"},
               "spec":{"replicas":replicas,"template":{"metadata":{"labels":{"app":"istiod","istio":"pilot"}}}}})
    }
    fn pdb(spec: Value) -> Value {
        json!({"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"istiod","namespace":"istio-system"},
               "spec": spec})
    }
    fn codes(objs: Vec<Value>) -> Vec<String> {
        Pdb::evaluate(&context(), &FakeCluster::new(objs))
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    /// The fix speaks the language of the source: IstioOperator for a bundle, the istiod
    /// chart's own values for `--charts`.
    #[test]
    fn fixes_speak_the_sources_language() {
        let fixes = |ctx: &Context| -> Vec<String> {
            Pdb::evaluate(ctx, &FakeCluster::new(vec![istiod(1)]))
                .into_iter()
                .filter_map(|f| f.remediation)
                .collect()
        };
        let bundle = fixes(&context()).join("\n");
        assert!(
            bundle.contains("--set components.pilot.k8s.replicaCount=2"),
            "{bundle}"
        );
        assert!(bundle.contains("defaultPodDisruptionBudget"), "{bundle}");
        let charts = fixes(&charts_context()).join("\n");
        assert!(charts.contains("--set istiod:autoscaleMin=2"), "{charts}");
        assert!(!charts.contains("components."), "{charts}");
    }

    #[test]
    fn healthy() {
        assert!(
            codes(vec![
                istiod(2),
                pdb(json!({"minAvailable":1,"selector":{"matchLabels":{"app":"istiod"}}}))
            ])
            .is_empty()
        );
        assert!(codes(vec![]).is_empty(), "nothing installed");
    }

    #[test]
    fn single_replica_and_blocking_budget() {
        let c = codes(vec![
            istiod(1),
            pdb(json!({"minAvailable":1,"selector":{"matchLabels":{"app":"istiod"}}})),
        ]);
        assert_eq!(c, ["pdb.replicas", "pdb.no-disruption"]);
    }

    #[test]
    fn missing_budget_and_status() {
        assert_eq!(codes(vec![istiod(3)]), ["pdb.missing"]);
        let mut p = pdb(json!({"maxUnavailable":"50%","selector":{"matchLabels":{"app":"other"}}}));
        assert_eq!(codes(vec![istiod(3), p.clone()]), ["pdb.missing"]);
        p["spec"]["selector"]["matchLabels"] = json!({"istio":"pilot"});
        p["status"] = json!({"disruptionsAllowed": 0});
        assert_eq!(codes(vec![istiod(3), p]), ["pdb.no-disruption"]);
        assert_eq!(
            disruptions_allowed(&pdb(json!({"maxUnavailable":"50%"})), 3),
            2
        );
    }

    #[test]
    fn denied_read_is_a_warning() {
        let c = FakeCluster {
            deny: Some("not granted".into()),
            ..Default::default()
        };
        assert_eq!(Pdb::evaluate(&context(), &c)[0].code, "pdb.unreadable");
    }
}
