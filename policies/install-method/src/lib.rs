//! `install-method`: meshup and istioctl installs are upgraded from any source; a Helm
//! install only from the release's own charts (`--charts`), which meshup applies as Helm
//! would and records in Helm's own release records.

use meshup_policy_sdk::*;

pub struct InstallMethod;

impl Policy for InstallMethod {
    fn metadata() -> Metadata {
        Metadata {
            name: "install-method".into(),
            version: "0.1.0".into(),
            description:
                "Allows control planes installed by meshup or istioctl (or none yet), and Helm \
                          installs upgraded from the release's own charts; refuses a Helm install \
                          with a built-in bundle, which Helm's records could not follow."
                    .into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        let subject = format!("control plane {}", ctx.namespace);
        match ctx.install_method.as_str() {
            "meshup" | "istioctl" | "none" => vec![],
            "helm" if ctx.source == ReleaseSource::Charts => vec![],
            "helm" => vec![
                error("install-method.helm", format!("the control plane in {} is managed by Helm, and a built-in bundle is not Helm's charts: Helm's release records could not say what runs afterwards", ctx.namespace))
                    .with_remediation(format!("upgrade it from the release's own charts: meshup upgrade --charts istio-{} (the release archive's directory, or `helm pull` charts)", ctx.target_version))
                    .with_subject(subject),
            ],
            "unknown" => vec![
                warning("install-method.unknown", "could not tell how the control plane was installed (no meshup release, istioctl state or Helm labels)")
                    .with_remediation("check that nothing else (Helm, GitOps) manages these objects before upgrading")
                    .with_subject(subject),
            ],
            other => vec![
                error("install-method.unsupported", format!("install method {other:?} is not supported"))
                    .with_remediation("only meshup and istioctl installs can be upgraded by meshup")
                    .with_subject(subject),
            ],
        }
    }
}

export_policy!(InstallMethod);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    fn codes(method: &str) -> Vec<(String, Severity)> {
        let mut ctx = context();
        ctx.install_method = method.into();
        InstallMethod::evaluate(&ctx, &FakeCluster::default())
            .into_iter()
            .map(|f| (f.code, f.severity))
            .collect()
    }

    #[test]
    fn methods() {
        assert!(codes("meshup").is_empty());
        assert!(codes("istioctl").is_empty());
        assert!(codes("none").is_empty());
        assert_eq!(
            codes("helm"),
            [("install-method.helm".to_string(), Severity::Error)]
        );
        // From the release's own charts, a Helm install is upgraded (its records kept).
        let mut charts = meshup_policy_sdk::testing::charts_context();
        charts.install_method = "helm".into();
        assert!(InstallMethod::evaluate(&charts, &FakeCluster::default()).is_empty());
        assert_eq!(
            codes("unknown"),
            [("install-method.unknown".to_string(), Severity::Warning)]
        );
        assert_eq!(codes("kustomize")[0].1, Severity::Error);
    }
}
