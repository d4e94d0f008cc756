//! istioctl as the installer: its `installed-state` IstioOperator (istioctl up to 1.20:
//! the profile merged with the user's inputs, its hub and tag, the values it chose from the
//! cluster) and the ownership labels it puts on every object (`operator.istio.io/*`),
//! which are all a later istioctl leaves.

use anyhow::Context as _;
use async_trait::async_trait;
use serde_json::Value;

use crate::base::object::ObjectKey;
use crate::cluster::kube::Kube;
use crate::installed::installer::{Installer, Previous};
use crate::installed::state::{DEFAULT_REVISION, InstallMethod, Installed};
use crate::release::discovery::Discovery;
use crate::release::source::{Facts, RenderContext, Source};

pub struct Istioctl;

#[async_trait]
impl Installer for Istioctl {
    fn name(&self) -> &'static str {
        "istioctl"
    }

    /// Its installed-state record (named NAME[-<rev>]), else its component label on the
    /// control plane's Deployments.
    async fn detect(
        &self,
        cluster: &dyn Kube,
        discovery: &Discovery,
        namespace: &str,
        deployments: &[Value],
    ) -> anyhow::Result<Option<InstallMethod>> {
        let Some(state) = &discovery.installed_state else {
            return Ok(None);
        };
        // An error here means its kind is not served: not an install of it.
        let records = cluster
            .list(&state.api_version, &state.kind, Some(namespace), None)
            .await
            .unwrap_or_default();
        let revision_prefix = format!("{}-", state.name);
        let record = records.iter().find(|o| {
            o["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n == state.name || n.starts_with(&revision_prefix))
        });
        if let Some(record) = record {
            let spec = record["spec"].clone();
            let profile = spec["profile"].as_str().unwrap_or("default").to_string();
            return Ok(Some(InstallMethod::Istioctl { profile, spec }));
        }
        let labelled = deployments
            .iter()
            .any(|d| d["metadata"]["labels"][&state.component_label].is_string());
        Ok(labelled.then(|| InstallMethod::Istioctl {
            profile: "default".into(),
            spec: Value::Object(Default::default()),
        }))
    }

    fn previous(
        &self,
        installed: &Installed,
        target: &dyn Source,
    ) -> anyhow::Result<Option<Previous>> {
        let InstallMethod::Istioctl { profile, spec } = &installed.method else {
            return Ok(None);
        };
        let running = installed.version().map(str::to_string);
        Ok(Some(from_installed_state(running, profile, spec, target)))
    }

    /// Keep its installed-state (if the cluster has one) true, as istioctl writes it: the
    /// profile and the spec of what now runs.
    async fn record(
        &self,
        cluster: &dyn Kube,
        facts: &Facts,
        profile: &str,
        spec: &Value,
    ) -> anyhow::Result<bool> {
        let Some(state) = &facts.discovery.installed_state else {
            return Ok(false);
        };
        let key = ObjectKey {
            api_version: state.api_version.clone(),
            kind: state.kind.clone(),
            namespace: Some(facts.namespace.clone()),
            name: state.name.clone(),
        };
        // No installed-state (or its kind is not served at all): never installed that way.
        let Some(mut obj) = cluster.get_if_served(&key).await? else {
            return Ok(false);
        };
        let mut expanded = spec.clone();
        expanded["profile"] = Value::String(profile.to_string());
        obj["spec"] = expanded;
        cluster
            .replace(&obj)
            .await
            .with_context(|| format!("updating the installed-state record {key}"))?;
        Ok(true)
    }
}

/// What the user set is the installed-state minus Istio's expansion of the installed
/// release's profile (the source of the installed minor, whatever its patch), as that
/// source reads it (`Source::user_set`). With no source of the installed minor at hand,
/// what the user set cannot be told apart from what the profile set: nothing is taken
/// for the user's (`None` profile defaults).
pub fn from_installed_state(
    running: Option<String>,
    profile: &str,
    spec: &Value,
    target: &dyn Source,
) -> Previous {
    let unknown = Previous {
        version: running.clone(),
        profile: profile.to_string(),
        profile_defaults: None,
        overlay: Value::Object(Default::default()),
        values: None,
        manifest: None,
        keeps_values: false,
    };
    let Some(source) = running.as_deref().and_then(|v| target.release_of(v)) else {
        return unknown;
    };
    let profile_name = match source.profile(profile) {
        Some(_) => profile,
        None => source.default_profile(),
    };
    let set = source.user_set(profile_name, spec, running.as_deref());
    let Ok(values) = source.layer(profile_name, set.cluster, set.overlay) else {
        return unknown;
    };
    let ctx = RenderContext {
        revision: DEFAULT_REVISION,
        kubernetes: None,
        upgrade: false,
    };
    let manifest = source.render(&values.merged, ctx).ok();
    Previous {
        version: running,
        profile: profile.to_string(),
        profile_defaults: Some(values.defaults),
        overlay: values.overlay,
        values: Some(values.merged),
        manifest,
        keeps_values: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::bundle::Bundle;
    use serde_json::json;

    #[test]
    fn istioctl_overlay_is_the_installed_state_minus_the_installed_profile() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.8.6")).unwrap();
        let installed = Bundle::load(&dir.join("istio-1.7.8")).unwrap();
        // What istioctl 1.7 stores: the expanded profile, legacy duplicates, chart values
        // meshup does not model, and the two values the user set.
        let mut spec = installed.profile("default").unwrap().clone();
        spec["profile"] = json!("default");
        spec["values"]["global"]["hub"] = spec["hub"].clone();
        spec["values"]["pilot"]["replicaCount"] = json!(1);
        spec["values"]["pilot"]["autoscaleMax"] = json!(5);
        spec["values"]["global"]["arch"] = json!({"amd64": 2});
        spec["values"]["pilot"]["traceSampling"] = json!(5.0);
        spec["components"]["pilot"]["k8s"]["resources"] = json!({"requests": {"cpu": "1"}});
        let prev = from_installed_state(
            Some("1.7.8".into()),
            "default",
            &spec,
            &target as &dyn Source,
        );
        assert_eq!(
            prev.overlay,
            json!({"values": {"pilot": {"traceSampling": 5.0}},
                   "components": {"pilot": {"k8s": {"resources": {"requests": {"cpu": "1"}}}}}})
        );
        assert_eq!(
            prev.profile_defaults.as_ref(),
            Some(installed.profile("default").unwrap())
        );
        // Its manifest is 1.7.8's: the binding 1.8 renamed is there to be pruned.
        let manifest = prev.manifest.unwrap();
        assert!(
            manifest
                .objects
                .iter()
                .any(|o| o.name() == "istiod-pilot-istio-system")
        );
    }

    /// What a real istioctl 1.8.4 leaves for `--set profile=demo` and one value of the
    /// user's on a cluster without third-party tokens: only that value is the user's.
    #[test]
    fn an_installed_state_of_another_patch_holds_only_the_users_values() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.9.5")).unwrap();
        let installed = Bundle::load(&dir.join("istio-1.8.6")).unwrap();
        let mut spec = installed.profile("demo").unwrap().clone();
        spec["profile"] = json!("demo");
        spec["tag"] = json!("1.8.4");
        spec["installPackagePath"] = json!("");
        spec["values"]["global"]["jwtPolicy"] = json!("first-party-jwt");
        spec["values"]["pilot"]["env"] = json!({"ENABLE_LEGACY_FSGROUP_INJECTION": false});
        spec["values"]["pilot"]["traceSampling"] = json!(5.0);
        let prev =
            from_installed_state(Some("1.8.4".into()), "demo", &spec, &target as &dyn Source);
        assert_eq!(
            prev.overlay,
            json!({"values": {"pilot": {"traceSampling": 5.0}}})
        );
        // 1.8's demo, not the target's: the installed minor's bundle, whatever its patch.
        assert_eq!(
            prev.profile_defaults.as_ref(),
            installed.profiles.get("demo")
        );
        // What istioctl chose from the cluster is what runs, not what the user set.
        let values = prev.values.unwrap();
        assert_eq!(values["values"]["global"]["jwtPolicy"], "first-party-jwt");
        assert_eq!(
            values["values"]["pilot"]["env"]["ENABLE_LEGACY_FSGROUP_INJECTION"],
            false
        );
    }

    /// Without a bundle of the installed minor, profile values cannot be told from the
    /// user's: nothing is taken for the user's.
    #[test]
    fn an_installed_state_of_an_unknown_minor_claims_no_user_values() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let target = Bundle::load(&dir.join("istio-1.9.5")).unwrap();
        let spec = json!({"tag": "1.5.10", "values": {"pilot": {"traceSampling": 5.0}}});
        let prev = from_installed_state(
            Some("1.5.10".into()),
            "default",
            &spec,
            &target as &dyn Source,
        );
        assert_eq!(prev.overlay, json!({}));
        assert!(prev.profile_defaults.is_none() && prev.manifest.is_none());
    }
}
