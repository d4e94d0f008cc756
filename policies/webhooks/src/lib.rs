//! `webhooks`: every control-plane admission webhook points at a Service with ready endpoints.

use meshup_policy_sdk::*;

pub struct Webhooks;

const ADMISSION: &str = "admissionregistration.k8s.io/v1";
const KINDS: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

impl Policy for Webhooks {
    fn metadata() -> Metadata {
        Metadata {
            name: "webhooks".into(),
            version: "0.1.0".into(),
            description: "Checks that each control-plane admission webhook points at a Service with ready endpoints \
                          (a failurePolicy: Fail webhook without endpoints blocks pod creation mesh-wide), and \
                          reports webhook configurations left behind by removed control planes."
                .into(),
            phases: vec![Phase::Precheck, Phase::PostUpgrade],
            reads: vec![read(ADMISSION, KINDS[0]), read(ADMISSION, KINDS[1]), read("v1", "Service"), read("v1", "Endpoints")],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, cluster: &dyn Cluster) -> Vec<Finding> {
        let mut out = vec![];
        for kind in KINDS {
            let configs = match cluster.list(ADMISSION, kind, None, None) {
                Ok(c) => c,
                Err(e) => {
                    out.push(warning(
                        "webhooks.unreadable",
                        format!("cannot list {kind}s: {e}"),
                    ));
                    continue;
                }
            };
            for cfg in configs.iter().filter(|c| is_mesh(c)) {
                for hook in obj::at(cfg, "webhooks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(f) = check_hook(ctx, cluster, cfg, hook) {
                        out.push(f);
                    }
                }
            }
        }
        out
    }
}

export_policy!(Webhooks);

/// A webhook configuration that belongs to an Istio control plane.
fn is_mesh(cfg: &Value) -> bool {
    obj::label(cfg, "istio.io/rev").is_some()
        || matches!(obj::label(cfg, "app"), Some("sidecar-injector" | "istiod"))
        || obj::name(cfg).starts_with("istio")
}

fn check_hook(ctx: &Context, cluster: &dyn Cluster, cfg: &Value, hook: &Value) -> Option<Finding> {
    let svc = obj::at(hook, "clientConfig.service")?;
    let (ns, name) = (obj::str_at(svc, "namespace")?, obj::str_at(svc, "name")?);
    let hook_name = obj::str_at(hook, "name").unwrap_or("?");
    let fail = obj::str_at(hook, "failurePolicy").unwrap_or("Fail") == "Fail";
    let subject = format!("{} webhook {hook_name}", obj::subject(cfg));
    let service = match cluster.get("v1", "Service", Some(ns), name) {
        Ok(s) => s,
        Err(e) => {
            return Some(
                warning(
                    "webhooks.unreadable",
                    format!("cannot read Service {ns}/{name}: {e}"),
                )
                .with_subject(subject),
            );
        }
    };
    if service.is_none() {
        let f = if fail {
            error("webhooks.no-endpoints", "")
        } else {
            warning("webhooks.orphaned", "")
        };
        let msg = format!(
            "{subject} points at Service {ns}/{name}, which does not exist: left behind by a removed control plane{}",
            if fail {
                "; with failurePolicy: Fail it blocks every pod creation it matches"
            } else {
                ""
            }
        );
        return Some(
            Finding { message: msg, ..f }
                .with_remediation(format!(
                    "delete it: kubectl delete {} {}",
                    obj::str_at(cfg, "kind").unwrap_or("").to_lowercase(),
                    obj::name(cfg)
                ))
                .with_subject(subject),
        );
    }
    let ready = match cluster.get("v1", "Endpoints", Some(ns), name) {
        Ok(ep) => ep.is_some_and(|ep| {
            obj::at(&ep, "subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|s| {
                    obj::at(s, "addresses")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                })
        }),
        Err(e) => {
            return Some(
                warning(
                    "webhooks.unreadable",
                    format!("cannot read Endpoints {ns}/{name}: {e}"),
                )
                .with_subject(subject),
            );
        }
    };
    if ready {
        return None;
    }
    let msg = format!("{subject} points at Service {ns}/{name}, which has no ready endpoints");
    Some(if fail {
        error("webhooks.no-endpoints", format!("{msg}; with failurePolicy: Fail it blocks pod creation mesh-wide"))
            .with_remediation(format!("make {name} ready in {ns} (kubectl -n {ns} get pods) before changing the control plane in {}", ctx.namespace))
            .with_subject(subject)
    } else {
        warning(
            "webhooks.no-endpoints",
            format!("{msg}; failurePolicy: Ignore lets pods start without injection"),
        )
        .with_remediation(format!("make {name} ready in {ns}"))
        .with_subject(subject)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    fn hookcfg(name: &str, svc_ns: &str, svc: &str, policy: &str) -> Value {
        json!({"apiVersion":ADMISSION,"kind":"MutatingWebhookConfiguration","metadata":{"name":name,"labels":{"app":"sidecar-injector"}},
               "webhooks":[{"name":"sidecar-injector.istio.io","failurePolicy":policy,"clientConfig":{"service":{"namespace":svc_ns,"name":svc}}}]})
    }
    fn service(ns: &str, name: &str) -> Value {
        json!({"apiVersion":"v1","kind":"Service","metadata":{"name":name,"namespace":ns}})
    }
    fn endpoints(ns: &str, name: &str, ready: bool) -> Value {
        let addrs = if ready {
            json!([{"ip":"10.0.0.1"}])
        } else {
            json!([])
        };
        json!({"apiVersion":"v1","kind":"Endpoints","metadata":{"name":name,"namespace":ns},"subsets":[{"addresses":addrs}]})
    }
    fn codes(objs: Vec<Value>) -> Vec<(String, Severity)> {
        Webhooks::evaluate(&context(), &FakeCluster::new(objs))
            .into_iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    #[test]
    fn ready_webhook_passes() {
        let objs = vec![
            hookcfg("istio-sidecar-injector", "istio-system", "istiod", "Fail"),
            service("istio-system", "istiod"),
            endpoints("istio-system", "istiod", true),
        ];
        assert!(codes(objs).is_empty());
    }

    #[test]
    fn fail_without_endpoints_is_error_ignore_is_warning() {
        let objs = vec![
            hookcfg("istio-sidecar-injector", "istio-system", "istiod", "Fail"),
            service("istio-system", "istiod"),
            endpoints("istio-system", "istiod", false),
        ];
        assert_eq!(
            codes(objs),
            [("webhooks.no-endpoints".to_string(), Severity::Error)]
        );
        let objs = vec![
            hookcfg("istio-sidecar-injector", "istio-system", "istiod", "Ignore"),
            service("istio-system", "istiod"),
        ];
        assert_eq!(
            codes(objs),
            [("webhooks.no-endpoints".to_string(), Severity::Warning)]
        );
    }

    #[test]
    fn leftover_and_foreign() {
        let objs = vec![hookcfg(
            "istio-sidecar-injector-canary",
            "istio-old",
            "istiod-canary",
            "Ignore",
        )];
        assert_eq!(
            codes(objs),
            [("webhooks.orphaned".to_string(), Severity::Warning)]
        );
        let mut other = hookcfg("cert-manager-webhook", "cert-manager", "cm", "Fail");
        other["metadata"]["labels"] = json!({});
        assert!(codes(vec![other]).is_empty());
    }
}
