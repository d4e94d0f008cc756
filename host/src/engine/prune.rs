//! The one rule for what a run removes: objects an old state had that the new one does
//! not. CustomResourceDefinitions and Namespaces are never removed: deleting a CRD deletes
//! every custom resource of its type, and deleting a namespace deletes everything in it
//! (meshup's own history and lock included).

use std::collections::BTreeSet;

use crate::base::object::ObjectKey;

/// The label an installer puts on what no later install may prune (istioctl's, on the
/// revision tag `istioctl install` creates beside the manifest).
pub const NOT_PRUNED_LABEL: &str = "install.operator.istio.io/owning-resource-not-pruned";

/// Whether meshup may ever delete an object of this kind.
pub fn removable(key: &ObjectKey) -> bool {
    !matches!(key.kind.as_str(), "CustomResourceDefinition" | "Namespace")
}

/// The objects of `had` that `keep` does not have and that may be removed, in `had`'s
/// order, each once.
pub fn dropped<'a>(
    had: impl IntoIterator<Item = &'a ObjectKey>,
    keep: &BTreeSet<ObjectKey>,
) -> Vec<ObjectKey> {
    let mut out: Vec<ObjectKey> = Vec::new();
    for k in had {
        if !keep.contains(k) && removable(k) && !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    #[test]
    fn drops_what_the_new_state_lacks_but_never_crds_or_namespaces() {
        let had = [
            key("ConfigMap", "a"),
            key("ConfigMap", "b"),
            key("CustomResourceDefinition", "c"),
            key("Namespace", "d"),
            key("ConfigMap", "a"),
        ];
        let keep = BTreeSet::from([key("ConfigMap", "b")]);
        assert_eq!(dropped(&had, &keep), vec![key("ConfigMap", "a")]);
    }
}
