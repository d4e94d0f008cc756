//! Native test helpers: a realistic [`Context`] and a [`FakeCluster`].

use serde_json::Value;

use crate::{Cluster, Component, ComponentRole, Context, Direction, Phase, VersionRange, obj};

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
        components: vec![
            Component {
                name: "base".into(),
                role: ComponentRole::Base,
            },
            Component {
                name: "istiod".into(),
                role: ComponentRole::ControlPlane,
            },
            Component {
                name: "istio-ingressgateway".into(),
                role: ComponentRole::Gateway,
            },
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

/// An in-memory cluster for native tests. Label selectors support `k=v`, `k!=v`, `k`, `!k`.
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

fn selector_matches(o: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                obj::label(o, k.trim()) != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                obj::label(o, k.trim().trim_end_matches('='))
                    == Some(v.trim().trim_start_matches('='))
            } else if let Some(k) = term.strip_prefix('!') {
                obj::label(o, k.trim()).is_none()
            } else {
                obj::label(o, term).is_some()
            }
        })
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
        Ok(self
            .objects
            .iter()
            .filter(|o| Self::matches(o, api_version, kind, namespace))
            .filter(|o| label_selector.is_none_or(|s| selector_matches(o, s)))
            .cloned()
            .collect())
    }
}
