//! Exit codes, chosen in one place: each error chain maps to the documented code of the
//! first error in it that says what it means for the user (`base::exit` defines the codes).

use crate::base::exit::{Code, Exit};

/// The exit code for an error chain, decided here and nowhere else: the first error in the
/// chain that says what it means for the user (an `Exit`, or a module's typed error that is
/// the user's input), else `Unexpected`.
pub fn code_of(err: &anyhow::Error) -> Code {
    err.chain()
        .find_map(code_of_one)
        .unwrap_or(Code::Unexpected)
}

fn code_of_one(e: &(dyn std::error::Error + 'static)) -> Option<Code> {
    use crate::cluster::client as cluster;
    if let Some(e) = e.downcast_ref::<Exit>() {
        return Some(e.code);
    }
    // Input files and references the user gave: the bundle, IstioOperator files and
    // --set, the policy configuration and policy files, a revision to roll back to.
    if e.is::<crate::release::bundle::Error>()
        || e.is::<crate::base::yaml::Error>()
        || e.is::<crate::release::iop::Error>()
        || e.is::<crate::policy::Error>()
        || e.is::<crate::release::charts::Error>()
        || e.is::<crate::release::charts::helm::Error>()
        || e.is::<crate::release::istioctl::Error>()
        || e.is::<crate::release::istioctl::BinaryError>()
        || e.is::<crate::engine::reverts::Error>()
        || e.is::<meshup_sim::BackendConfigError>()
        || e.is::<crate::action::rollback::Error>()
    {
        return Some(Code::BadInput);
    }
    // A record in the cluster meshup refuses to read (a hostile or corrupt Helm release
    // Secret): nothing was changed, and the message names the Secret.
    if e.is::<crate::installed::helm::record::RecordError>()
        || e.is::<crate::installed::helm::releases::Error>()
    {
        return Some(Code::BadInput);
    }
    // Helm's own lock held by someone else, or nothing deployed to upgrade from: blocked,
    // nothing changed.
    if e.is::<crate::installed::helm::ledger::Error>() {
        return Some(Code::Blocked);
    }
    if let Some(e) = e.downcast_ref::<cluster::Error>() {
        return Some(match e {
            cluster::Error::Kubeconfig(_) => Code::BadInput,
            _ => Code::Unexpected,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn code(e: impl Into<anyhow::Error>) -> Code {
        // Context on top must not hide what the error means.
        code_of(&Err::<(), _>(e.into()).context("while doing X").unwrap_err())
    }

    #[test]
    fn typed_errors_map_to_their_documented_codes() {
        use crate::action::rollback;
        use crate::cluster::client as cluster;
        use crate::policy;
        use crate::release::{bundle, iop};
        assert_eq!(code(bundle::Error::NotABundle("x".into())), Code::BadInput);
        assert_eq!(
            code(iop::Error::Set {
                expr: "a=b".into(),
                message: "unknown".into()
            }),
            Code::BadInput
        );
        assert_eq!(
            code(policy::Error::Reference("builtin:nope".into())),
            Code::BadInput
        );
        assert_eq!(
            code(policy::Error::Config {
                path: "policies.yaml".into(),
                message: "policies[0] (a.wasm): sha256 must be 64 hex digits".into()
            }),
            Code::BadInput
        );
        assert_eq!(
            code(rollback::Error::NoSuchRevision {
                revision: 9,
                known: vec![1, 2]
            }),
            Code::BadInput
        );
        assert_eq!(code(rollback::Error::NoEarlierRevision), Code::BadInput);
        // A mistake in meshup's own default policies is a bug, not the user's input.
        assert_eq!(
            code(policy::set::Error::Grants {
                at: "builtin:skew".into(),
                cause: policy::grants::Error::SecretWithoutNames {
                    grant: "v1 Secret".into()
                }
            }),
            Code::Unexpected
        );
        assert_eq!(
            code(cluster::Error::Kubeconfig("bad".into())),
            Code::BadInput
        );
        assert_eq!(
            code(cluster::Error::Unreachable {
                at: "https://127.0.0.1:1".into(),
                cause: "refused".into()
            }),
            Code::Unexpected
        );
        // A Helm record meshup refuses to read: input from the cluster, nothing changed.
        use crate::installed::helm::{record, releases};
        let bomb = || record::RecordError::Inflated {
            secret: record::SecretRef {
                namespace: "istio-system".into(),
                name: "sh.helm.release.v1.istiod.v5".into(),
            },
            limit: record::MAX_JSON_BYTES,
        };
        assert_eq!(code(bomb()), Code::BadInput);
        assert_eq!(
            code(releases::Error {
                namespace: "istio-system".into(),
                name: "istiod".into(),
                named_by: "named by Deployment istio-system/istiod".into(),
                cause: bomb(),
            }),
            Code::BadInput
        );
        // A missing istioctl, or one that refuses the inputs: nothing was changed.
        use crate::release::istioctl::{BinaryError, Error as IstioctlError};
        assert_eq!(
            code(BinaryError::Render {
                path: "istioctl".into(),
                stderr: "unknown field".into()
            }),
            Code::BadInput
        );
        assert_eq!(code(IstioctlError::NoControlPlane), Code::BadInput);
        assert_eq!(code(Exit::new(Code::Blocked, "no")), Code::Blocked);
        assert_eq!(code(anyhow::anyhow!("anything else")), Code::Unexpected);
    }
}
