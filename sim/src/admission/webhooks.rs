//! Mutating admission webhooks, chosen as the API server chooses them: every
//! MutatingWebhookConfiguration (in name order), each of its webhooks in
//! turn, when one of its rules matches the request and its namespaceSelector
//! and objectSelector select the object. No webhook server runs: what a
//! webhook does is its simulated backend (`admission::backend`); a webhook
//! without one is not called.

use super::backend::WebhookBackends;
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::Store;
use serde_json::Value;

const CONFIGURATIONS: &str = "admissionregistration.k8s.io/mutatingwebhookconfigurations";

/// An admission request, as webhook rules see it.
pub struct Request<'a> {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'a str,
    pub resource: &'a ResourceType,
    /// "" for the resource itself.
    pub subresource: &'a str,
    /// The Namespace the object is in (namespaced resources).
    pub namespace: Option<&'a Value>,
}

/// Runs every webhook that applies to the request on `object`; returns
/// whether any changed it.
pub fn mutate(
    store: &Store,
    backends: &WebhookBackends,
    req: &Request,
    object: &mut Value,
) -> bool {
    // Webhook configurations are never themselves sent to webhooks (as in Kubernetes).
    if backends.is_empty() || req.resource.group == "admissionregistration.k8s.io" {
        return false;
    }
    let (configurations, _, _) = store.list(CONFIGURATIONS, None, None, 0, &|_| true);
    let mut changed = false;
    for configuration in configurations {
        let webhooks = configuration
            .value
            .get("webhooks")
            .and_then(Value::as_array);
        for webhook in webhooks.into_iter().flatten() {
            if applies(webhook, req, object)
                && let Some(backend) = backends.serving(webhook, object)
            {
                changed |= backend.mutate(store, webhook, object);
            }
        }
    }
    changed
}

/// Whether a webhook is called for this request and object.
pub fn applies(webhook: &Value, req: &Request, object: &Value) -> bool {
    let rules = webhook.get("rules").and_then(Value::as_array);
    rules.into_iter().flatten().any(|r| rule_matches(r, req))
        && namespace_labels(req, object)
            .is_none_or(|l| selects(webhook.get("namespaceSelector"), l))
        && selects(webhook.get("objectSelector"), labels(object))
}

/// A `RuleWithOperations`: operations, apiGroups, apiVersions, resources
/// (`pods`, `pods/status`, `pods/*`, `*`, `*/*`) and scope.
fn rule_matches(rule: &Value, req: &Request) -> bool {
    let rt = req.resource;
    let lists = |field: &str, wanted: &str| {
        rule.get(field)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "*" || x == wanted))
    };
    let resources = rule.get("resources").and_then(Value::as_array);
    let resource = resources
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r, ""));
            (res == "*" || res == rt.plural) && (sub == "*" || sub == req.subresource)
        });
    let scope = match rule.get("scope").and_then(Value::as_str) {
        Some("Cluster") => !rt.namespaced,
        Some("Namespaced") => rt.namespaced,
        _ => true,
    };
    lists("operations", req.operation)
        && lists("apiGroups", &rt.group)
        && lists("apiVersions", &rt.version)
        && resource
        && scope
}

/// The labels a namespaceSelector is matched against: the Namespace's for a
/// namespaced object, a Namespace's own; `None` for other cluster-scoped
/// objects, which every namespaceSelector lets through.
fn namespace_labels<'a>(req: &Request<'a>, object: &'a Value) -> Option<Option<&'a Value>> {
    if req.resource.group.is_empty() && req.resource.plural == "namespaces" {
        Some(labels(object))
    } else if req.resource.namespaced {
        Some(req.namespace.and_then(labels))
    } else {
        None
    }
}

fn labels(object: &Value) -> Option<&Value> {
    object.pointer("/metadata/labels")
}

/// An absent selector selects everything, as does `{}`; one that does not
/// parse selects nothing (the API server would have refused it).
fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    match selector.map(LabelSelector::from_object) {
        None => true,
        Some(Ok(s)) => s.matches(labels.and_then(Value::as_object)),
        Some(Err(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    /// Whether a rule matches `op` on `target` (`group/resource/subresource`).
    fn matches(rule: &Value, target: &str, op: &str) -> bool {
        let mut parts = target.splitn(3, '/');
        let (group, plural) = (parts.next().unwrap(), parts.next().unwrap());
        let registry = Registry::new();
        let rt = registry.lookup(group, "v1", plural).expect("a served type");
        let req = Request {
            operation: op,
            resource: &rt,
            subresource: parts.next().unwrap_or(""),
            namespace: None,
        };
        rule_matches(rule, &req)
    }

    /// A rule for CREATE and UPDATE in the core and apps groups, v1.
    fn rule(resources: &str, scope: &str) -> Value {
        json!({"operations": ["CREATE", "UPDATE"], "apiGroups": ["", "apps"], "apiVersions": ["v1"],
            "resources": resources.split(',').collect::<Vec<_>>(), "scope": scope})
    }

    #[test]
    fn rules_by_resource_subresource_operation_group_and_scope() {
        // (resources, scope, target, operation, matches)
        let cases = [
            ("pods", "*", "/pods", "CREATE", true),
            ("pods", "*", "/pods/status", "UPDATE", false),
            ("pods/status", "*", "/pods/status", "UPDATE", true),
            ("pods/*", "*", "/pods/status", "UPDATE", true),
            ("pods/*", "*", "/pods", "CREATE", true),
            ("*", "*", "apps/deployments", "CREATE", true),
            ("*", "*", "apps/deployments/scale", "UPDATE", false),
            ("*/scale", "*", "apps/deployments/scale", "UPDATE", true),
            ("*/*", "*", "/services", "CREATE", true),
            ("pods", "*", "/pods", "DELETE", false),
            ("*", "*", "rbac.authorization.k8s.io/roles", "CREATE", false),
            ("*", "Cluster", "/pods", "CREATE", false),
            ("*", "Cluster", "/namespaces", "CREATE", true),
            ("*", "Namespaced", "/pods", "CREATE", true),
            ("*", "Namespaced", "/nodes", "CREATE", false),
        ];
        for (resources, scope, target, op, want) in cases {
            let r = rule(resources, scope);
            assert_eq!(matches(&r, target, op), want, "{r} for {op} {target}");
        }
        let any = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        assert!(matches(&any, "rbac.authorization.k8s.io/roles", "DELETE"));
    }

    #[test]
    fn namespace_selector_sees_the_namespace_or_a_namespace_itself() {
        let registry = Registry::new();
        let webhook = json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
            "namespaceSelector": {"matchLabels": {"team": "a"}}});
        let team_a = json!({"metadata": {"name": "a", "labels": {"team": "a"}}});
        let bare = json!({"metadata": {"name": "x"}});
        let request = |plural: &str, namespace: Option<&Value>, f: &dyn Fn(&Request) -> bool| {
            let rt = registry.lookup("", "v1", plural).unwrap();
            f(&Request {
                operation: "CREATE",
                resource: &rt,
                subresource: "",
                namespace,
            })
        };
        assert!(request("pods", Some(&team_a), &|r| applies(
            &webhook, r, &bare
        )));
        assert!(!request("pods", Some(&bare), &|r| applies(
            &webhook, r, &bare
        )));
        assert!(request("namespaces", None, &|r| applies(
            &webhook, r, &team_a
        )));
        assert!(!request("namespaces", None, &|r| applies(
            &webhook, r, &bare
        )));
        // other cluster-scoped objects are not held back by a namespaceSelector
        assert!(request("nodes", None, &|r| applies(&webhook, r, &bare)));
    }
}
