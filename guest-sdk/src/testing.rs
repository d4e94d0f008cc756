//! Native test helpers: a realistic [`Context`] and a [`FakeCluster`].

use serde_json::Value;

use crate::{
    Cluster, Component, ComponentRole, Context, Direction, Phase, ReleaseSource, Selector,
    VersionRange, obj,
};

/// A realistic precheck context: upgrade 1.7.8 → 1.8.6 in `istio-system`, installed by meshup.
pub fn context() -> Context {
    Context {
        phase: Phase::Precheck,
        direction: Direction::Upgrade,
        current_version: Some("1.7.8".into()),
        target_version: "1.8.6".into(),
        revision: "default".into(),
        install_method: "meshup".into(),
        namespace: "istio-system".into(),
        source: ReleaseSource::Bundle,
        components: vec![
            bundle_component("base", ComponentRole::Base),
            bundle_component("istiod", ComponentRole::ControlPlane),
            bundle_component("istio-ingressgateway", ComponentRole::Gateway),
        ],
        kubernetes_version: "1.24.3".into(),
        supported_kubernetes: VersionRange {
            min: "1.22".into(),
            max: "1.25".into(),
        },
        values_old: "{}".into(),
        values_new: "{}".into(),
        profile_defaults_old: "{}".into(),
        profile_defaults_new: "{}".into(),
        profile_old: "default".into(),
        profile_new: "default".into(),
        overlay_old: "{}".into(),
        overlay_new: "{}".into(),
        outcome: None,
        config: "{}".into(),
        now: "2026-01-01T00:00:00Z".into(),
    }
}

/// A component of a built-in bundle as the host gives it: its own release, no chart, in
/// `istio-system`, values `{}` (the bundle's spec is `values-new`).
pub fn bundle_component(name: &str, role: ComponentRole) -> Component {
    Component {
        name: name.into(),
        role,
        release: name.into(),
        chart: None,
        namespace: "istio-system".into(),
        values: "{}".into(),
    }
}

/// A precheck of an upgrade 1.29.6 → 1.30.3 rendered from the release's own Helm charts
/// (`--charts`), on Kubernetes 1.33.1, installed by helm: source `charts`,
/// the releases `istio-base` (chart `base`) and `istiod` in `istio-system`, `istio-ingress`
/// (chart `gateway`) in `istio-ingress`, each with the Helm values the user gave it
/// (`{}`); `values-*` hold them by release name.
pub fn charts_context() -> Context {
    let release = |name: &str, chart: &str, namespace: &str, role| Component {
        name: name.into(),
        role,
        release: name.into(),
        chart: Some(chart.into()),
        namespace: namespace.into(),
        values: "{}".into(),
    };
    Context {
        current_version: Some("1.29.6".into()),
        target_version: "1.30.3".into(),
        install_method: "helm".into(),
        kubernetes_version: "1.33.1".into(),
        supported_kubernetes: VersionRange {
            min: "1.30".into(),
            max: "1.34".into(),
        },
        source: ReleaseSource::Charts,
        components: vec![
            release("istio-base", "base", "istio-system", ComponentRole::Base),
            release(
                "istiod",
                "istiod",
                "istio-system",
                ComponentRole::ControlPlane,
            ),
            release(
                "istio-ingress",
                "gateway",
                "istio-ingress",
                ComponentRole::Gateway,
            ),
        ],
        ..context()
    }
}

/// An in-memory cluster for native tests. Label selectors are parsed and matched by the
/// shared vocabulary, as the host does: the full syntax (`in`, `notin`, ...), and a
/// malformed selector is an error, not an empty answer.
#[derive(Default, Clone)]
pub struct FakeCluster {
    pub objects: Vec<Value>,
    /// When set, every read fails with this message (simulates a refused grant).
    pub deny: Option<String>,
}

impl FakeCluster {
    pub fn new(objects: Vec<Value>) -> Self {
        FakeCluster {
            objects,
            deny: None,
        }
    }
    fn matches(o: &Value, api_version: &str, kind: &str, namespace: Option<&str>) -> bool {
        obj::str_at(o, "apiVersion") == Some(api_version)
            && obj::str_at(o, "kind") == Some(kind)
            && namespace.is_none_or(|ns| obj::namespace(o) == ns)
    }
}

impl Cluster for FakeCluster {
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String> {
        if let Some(d) = &self.deny {
            return Err(d.clone());
        }
        Ok(self
            .objects
            .iter()
            .find(|o| {
                Self::matches(o, api_version, kind, Some(namespace.unwrap_or("")))
                    && obj::name(o) == name
            })
            .cloned())
    }
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        if let Some(d) = &self.deny {
            return Err(d.clone());
        }
        let selector = label_selector
            .map(Selector::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(self
            .objects
            .iter()
            .filter(|o| Self::matches(o, api_version, kind, namespace))
            .filter(|o| selector.as_ref().is_none_or(|s| s.matches_object(o)))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The two fakes are the host's two sources as 0.3.0 gives them to policies.
    #[test]
    fn contexts_of_both_sources() {
        let b = context();
        assert_eq!(b.source, ReleaseSource::Bundle);
        assert!(b.components.iter().all(|c| c.chart.is_none()
            && c.release == c.name
            && c.namespace == "istio-system"
            && c.values == "{}"));
        let c = charts_context();
        assert_eq!(c.source, ReleaseSource::Charts);
        let seen: Vec<(&str, Option<&str>, &str)> = c
            .components
            .iter()
            .map(|c| (c.release.as_str(), c.chart.as_deref(), c.namespace.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("istio-base", Some("base"), "istio-system"),
                ("istiod", Some("istiod"), "istio-system"),
                ("istio-ingress", Some("gateway"), "istio-ingress"),
            ]
        );
    }

    fn cluster() -> FakeCluster {
        let pod = |name: &str, labels: Value| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "istio-system", "labels": labels}})
        };
        FakeCluster::new(vec![
            pod(
                "istiod-1",
                json!({"app": "istiod", "istio.io/rev": "1-8-6"}),
            ),
            pod(
                "istiod-2",
                json!({"app": "istiod", "istio.io/rev": "default"}),
            ),
            pod("gateway", json!({"app": "istio-ingressgateway"})),
        ])
    }

    fn names(selector: &str) -> Vec<String> {
        cluster()
            .list("v1", "Pod", Some("istio-system"), Some(selector))
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .iter()
            .map(|o| obj::name(o).to_string())
            .collect()
    }

    /// The fake answers set-based selectors as the host does (it used to split `in (a,b)`
    /// on its comma and answer nothing, so a policy's native test could pass where the host
    /// answers differently).
    #[test]
    fn set_based_selectors_answer_like_the_host() {
        assert_eq!(
            names("app in (istiod, istio-ingressgateway)"),
            ["istiod-1", "istiod-2", "gateway"]
        );
        assert_eq!(
            names("app=istiod,istio.io/rev notin (default)"),
            ["istiod-1"]
        );
        assert_eq!(
            names("istio.io/rev in (1-8-6,default)"),
            ["istiod-1", "istiod-2"]
        );
        assert_eq!(names("app==istiod,!istio.io/rev"), Vec::<String>::new());
        assert_eq!(names("app!=istiod"), ["gateway"]);
        assert_eq!(names(""), ["istiod-1", "istiod-2", "gateway"]);
    }

    #[test]
    fn malformed_selector_is_an_error() {
        let err = cluster()
            .list("v1", "Pod", None, Some("app in istiod"))
            .unwrap_err();
        assert!(err.contains("invalid label selector"), "{err}");
    }
}
