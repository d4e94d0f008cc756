//! [`PolicyContext`]: the serde mirror of the WIT `context` record. Its JSON is the
//! `--context` file format of `meshup policy test` and what the audit log stores.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::base::wit::meshup::policy::types as wit;

/// When in the upgrade flow policies run, and the role of a bundle component: the WIT
/// enums themselves (see `bindings`).
pub use crate::base::wit::{ComponentRole, Phase, ReleaseSource};

/// What the run does to the control plane: the plan's own direction.
pub use crate::base::version::Direction;

/// One component of the target release (a bundle component or a Helm chart release).
/// A `--context` file may leave out what 0.2.0 did not have: `release` is then the name,
/// `namespace` the context's, `values` `{}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentInfo {
    pub name: String,
    pub role: ComponentRole,
    #[serde(default)]
    pub release: String,
    #[serde(default)]
    pub chart: Option<String>,
    #[serde(default)]
    pub namespace: String,
    /// Its values in the source's language (Helm values of the release for charts).
    #[serde(default)]
    pub values: Value,
}

impl ComponentInfo {
    /// The WIT record, filling what a hand-written context left out.
    fn to_wit(&self, namespace: &str) -> wit::Component {
        let or = |s: &str, default: &str| {
            if s.is_empty() {
                default.to_string()
            } else {
                s.to_string()
            }
        };
        wit::Component {
            name: self.name.clone(),
            role: self.role,
            release: or(&self.release, &self.name),
            chart: self.chart.clone(),
            namespace: or(&self.namespace, namespace),
            values: json_str(&self.values),
        }
    }
}

/// Inclusive Kubernetes version range (`major.minor`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRange {
    pub min: String,
    pub max: String,
}

/// How the apply ended (post-upgrade only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyOutcome {
    pub succeeded: bool,
    #[serde(default)]
    pub message: String,
}

/// Everything a policy may know about a run (see `wit/policy.wit`, record `context`).
/// Values trees are JSON values here and JSON strings on the wire.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyContext {
    pub phase: Phase,
    pub direction: Direction,
    pub current_version: Option<String>,
    pub target_version: String,
    pub revision: String,
    pub install_method: String,
    pub namespace: String,
    /// What rendered the target (`bundle` when a `--context` file leaves it out).
    pub source: ReleaseSource,
    pub components: Vec<ComponentInfo>,
    pub kubernetes_version: String,
    pub supported_kubernetes: VersionRange,
    pub values_old: Value,
    pub values_new: Value,
    pub profile_defaults_old: Value,
    pub profile_defaults_new: Value,
    pub profile_old: String,
    pub profile_new: String,
    pub overlay_old: Value,
    pub overlay_new: Value,
    pub outcome: Option<ApplyOutcome>,
    /// The policy's own configuration; filled per policy by the runtime.
    pub config: Value,
    /// RFC 3339 time of the run; filled with the current time when empty.
    pub now: String,
}

fn json_str(v: &Value) -> String {
    match v {
        Value::Null => "{}".into(),
        v => v.to_string(),
    }
}

impl PolicyContext {
    /// The WIT record given to `evaluate`.
    pub fn to_wit(&self) -> wit::Context {
        wit::Context {
            phase: self.phase,
            direction: self.direction,
            current_version: self.current_version.clone(),
            target_version: self.target_version.clone(),
            revision: self.revision.clone(),
            install_method: self.install_method.clone(),
            namespace: self.namespace.clone(),
            source: self.source,
            components: self
                .components
                .iter()
                .map(|c| c.to_wit(&self.namespace))
                .collect(),
            kubernetes_version: self.kubernetes_version.clone(),
            supported_kubernetes: wit::VersionRange {
                min: self.supported_kubernetes.min.clone(),
                max: self.supported_kubernetes.max.clone(),
            },
            values_old: json_str(&self.values_old),
            values_new: json_str(&self.values_new),
            profile_defaults_old: json_str(&self.profile_defaults_old),
            profile_defaults_new: json_str(&self.profile_defaults_new),
            profile_old: self.profile_old.clone(),
            profile_new: self.profile_new.clone(),
            overlay_old: json_str(&self.overlay_old),
            overlay_new: json_str(&self.overlay_new),
            outcome: self.outcome.as_ref().map(|o| wit::Outcome {
                succeeded: o.succeeded,
                message: o.message.clone(),
            }),
            config: json_str(&self.config),
            now: self.now.clone(),
        }
    }
}

/// The current time as RFC 3339 UTC with seconds (`2026-11-25T11:40:00Z`).
pub use meshup_vocab::time::now as now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_json_context_parses_and_round_trips() {
        let ctx: PolicyContext = serde_json::from_str(
            r#"{"phase":"pre-upgrade","current_version":"1.7.8","target_version":"1.8.6",
                "components":[{"name":"istiod","role":"control-plane"}],"values_new":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(ctx.phase, Phase::PreUpgrade);
        let w = ctx.to_wit();
        assert_eq!(w.values_new, r#"{"a":1}"#);
        assert_eq!(w.values_old, "{}");
        let back: PolicyContext =
            serde_json::from_value(serde_json::to_value(&ctx).unwrap()).unwrap();
        assert_eq!(back, ctx);
        assert!(serde_json::from_str::<PolicyContext>(r#"{"bogus":1}"#).is_err());
        assert_eq!(w.source, ReleaseSource::Bundle);
        let c = &w.components[0];
        assert_eq!(
            (
                c.release.as_str(),
                c.chart.as_deref(),
                c.namespace.as_str(),
                c.values.as_str()
            ),
            ("istiod", None, "", "{}")
        );
    }

    #[test]
    fn chart_components_carry_their_release() {
        let ctx: PolicyContext = serde_json::from_str(
            r#"{"source":"charts","namespace":"istio-system","components":[
                {"name":"istio-ingress","role":"gateway","release":"istio-ingress",
                 "chart":"gateway","namespace":"istio-ingress","values":{"replicaCount":2}},
                {"name":"istiod","role":"control-plane","chart":"istiod"}]}"#,
        )
        .unwrap();
        let w = ctx.to_wit();
        assert_eq!(w.source, ReleaseSource::Charts);
        let (gw, istiod) = (&w.components[0], &w.components[1]);
        assert_eq!(gw.chart.as_deref(), Some("gateway"));
        assert_eq!(gw.namespace, "istio-ingress");
        assert_eq!(gw.values, r#"{"replicaCount":2}"#);
        assert_eq!(
            (istiod.release.as_str(), istiod.namespace.as_str()),
            ("istiod", "istio-system")
        );
    }

    #[test]
    fn now_is_rfc3339() {
        let n = now_rfc3339();
        assert_eq!(n.len(), 20, "{n}");
        assert!(n.starts_with("20") && n.ends_with('Z'));
    }
}
