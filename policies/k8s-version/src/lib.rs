//! `k8s-version`: the cluster's Kubernetes version is inside the target bundle's supported range.

use meshup_policy_sdk::*;

pub struct K8sVersion;

impl Policy for K8sVersion {
    fn metadata() -> Metadata {
        Metadata {
            name: "k8s-version".into(),
            version: "0.1.0".into(),
            description: "Refuses to install a release on a Kubernetes version outside the range its bundle supports.".into(),
            phases: vec![Phase::Precheck],
            reads: vec![],
            default_config: "{}".into(),
        }
    }

    fn evaluate(ctx: &Context, _cluster: &dyn Cluster) -> Vec<Finding> {
        let range = &ctx.supported_kubernetes;
        let (Some(k), Some(min), Some(max)) = (
            Version::parse(&ctx.kubernetes_version),
            Version::parse(&range.min),
            Version::parse(&range.max),
        ) else {
            return vec![warning(
                "k8s-version.unknown",
                format!(
                    "cannot compare Kubernetes {:?} with the supported range {:?}..{:?}",
                    ctx.kubernetes_version, range.min, range.max
                ),
            )];
        };
        let line = (k.major, k.minor);
        let subject = format!("Kubernetes {}", ctx.kubernetes_version);
        let remediation = format!(
            "use a bundle that supports Kubernetes {}, or move the cluster to {}..{}",
            k.minor_line(),
            range.min,
            range.max
        );
        if line < (min.major, min.minor) {
            vec![
                error(
                    "k8s-version.too-old",
                    format!(
                        "Kubernetes {} is older than {} supports (min {})",
                        ctx.kubernetes_version, ctx.target_version, range.min
                    ),
                )
                .with_remediation(remediation)
                .with_subject(subject),
            ]
        } else if line > (max.major, max.minor) {
            vec![
                error(
                    "k8s-version.too-new",
                    format!(
                        "Kubernetes {} is newer than {} supports (max {})",
                        ctx.kubernetes_version, ctx.target_version, range.max
                    ),
                )
                .with_remediation(remediation)
                .with_subject(subject),
            ]
        } else {
            vec![]
        }
    }
}

export_policy!(K8sVersion);

#[cfg(test)]
mod tests {
    use super::*;
    use meshup_policy_sdk::testing::{FakeCluster, context};

    fn codes(k: &str) -> Vec<String> {
        let mut ctx = context(); // supports 1.22..1.25
        ctx.kubernetes_version = k.into();
        K8sVersion::evaluate(&ctx, &FakeCluster::default())
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    #[test]
    fn inside_and_outside() {
        assert!(codes("1.22.0").is_empty());
        assert!(codes("v1.25.9+k3s1").is_empty());
        assert_eq!(codes("1.21.14"), ["k8s-version.too-old"]);
        assert_eq!(codes("1.26.0"), ["k8s-version.too-new"]);
        assert_eq!(codes("garbage"), ["k8s-version.unknown"]);
    }
}
