//! Table-driven registry of the resource types the simulator serves.

use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    /// Has a `/status` subresource: the main resource ignores status writes.
    pub status: bool,
    /// Only `create` (SelfSubjectAccessReview): not stored.
    pub virtual_create: bool,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
    pub categories: Vec<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// Storage key: one per group/resource, shared by all versions.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn api_resource_json(&self) -> Value {
        let mut v = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
        });
        if !self.short_names.is_empty() {
            v["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            v["categories"] = json!(self.categories);
        }
        v
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

// group, version, plural, kind, shortNames, namespaced, status subresource
const BUILTIN: &[(&str, &str, &str, &str, &str, bool, bool)] = &[
    ("", "v1", "namespaces", "Namespace", "ns", false, true),
    ("", "v1", "nodes", "Node", "no", false, true),
    ("", "v1", "configmaps", "ConfigMap", "cm", true, false),
    ("", "v1", "secrets", "Secret", "", true, false),
    ("", "v1", "services", "Service", "svc", true, true),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        "sa",
        true,
        false,
    ),
    ("", "v1", "endpoints", "Endpoints", "ep", true, false),
    ("", "v1", "pods", "Pod", "po", true, true),
    ("", "v1", "events", "Event", "ev", true, false),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        "deploy",
        true,
        true,
    ),
    ("apps", "v1", "replicasets", "ReplicaSet", "rs", true, true),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        "",
        true,
        false,
    ),
    ("apps", "v1", "daemonsets", "DaemonSet", "ds", true, true),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        "pdb",
        true,
        true,
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        "hpa",
        true,
        true,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        "",
        true,
        false,
    ),
    ("events.k8s.io", "v1", "events", "Event", "ev", true, false),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        "",
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        "",
        true,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        "",
        false,
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        "",
        false,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        "",
        false,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        "",
        false,
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        "crd,crds",
        false,
        true,
    ),
];

#[derive(Debug, Default)]
pub struct Registry {
    types: RwLock<Vec<Arc<ResourceType>>>,
}

impl Registry {
    pub fn new() -> Self {
        let mut types = Vec::new();
        for (g, v, plural, kind, short, namespaced, status) in BUILTIN {
            let categories = if matches!(
                *plural,
                "pods"
                    | "services"
                    | "deployments"
                    | "replicasets"
                    | "daemonsets"
                    | "horizontalpodautoscalers"
            ) {
                vec!["all".to_string()]
            } else {
                vec![]
            };
            types.push(Arc::new(ResourceType {
                group: g.to_string(),
                version: v.to_string(),
                plural: plural.to_string(),
                kind: kind.to_string(),
                singular: kind.to_lowercase(),
                short_names: short
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                namespaced: *namespaced,
                verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
                status: *status,
                virtual_create: false,
                custom: false,
                categories,
            }));
        }
        types.push(Arc::new(ResourceType {
            group: "authorization.k8s.io".into(),
            version: "v1".into(),
            plural: "selfsubjectaccessreviews".into(),
            kind: "SelfSubjectAccessReview".into(),
            singular: "selfsubjectaccessreview".into(),
            short_names: vec![],
            namespaced: false,
            verbs: vec!["create".into()],
            status: false,
            virtual_create: true,
            custom: false,
            categories: vec![],
        }));
        Registry {
            types: RwLock::new(types),
        }
    }

    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        self.types.read().expect("registry lock").clone()
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// By storage key "group/plural" (any version; the first registered).
    pub fn by_key(&self, key: &str) -> Option<Arc<ResourceType>> {
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .find(|t| t.key() == key)
            .cloned()
    }

    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        let (group, version) = split_api_version(api_version);
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .read()
            .expect("registry lock")
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// Replaces the types defined by the CRD named `crd_name` (`<plural>.<group>`).
    pub fn set_custom(&self, crd_name: &str, new: Vec<ResourceType>) {
        let mut types = self.types.write().expect("registry lock");
        types.retain(|t| !(t.custom && format!("{}.{}", t.plural, t.group) == crd_name));
        types.extend(new.into_iter().map(Arc::new));
    }

    pub fn remove_custom(&self, crd_name: &str) {
        self.set_custom(crd_name, vec![]);
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// The resource types a CRD object defines (one per served version).
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or("spec.names.plural is required")?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind is required")?;
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let short_names: Vec<String> = names
        .get("shortNames")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let categories: Vec<String> = names
        .get("categories")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[].name is required")?;
        let status = v.pointer("/subresources/status").is_some();
        out.push(ResourceType {
            group: group.to_string(),
            version: name.to_string(),
            plural: plural.to_string(),
            kind: kind.to_string(),
            singular: singular.clone(),
            short_names: short_names.clone(),
            namespaced,
            verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
            status,
            virtual_create: false,
            custom: true,
            categories: categories.clone(),
        });
    }
    if out.is_empty() {
        return Err("spec.versions must have a served version".into());
    }
    Ok(out)
}
