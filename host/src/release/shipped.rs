//! What this binary knows of the newest bundle it ships, for the actions that read the
//! cluster before any bundle is named (`status`, `history`, `rollback`, `dataplane`):
//! they take no `--bundle`, and the newest release is the one whose facts its
//! predecessors share (the product its releases are recorded under, the control-plane
//! namespace, how its control plane is found). Whenever a bundle is known, its own facts
//! are used instead. A test keeps this the newest of `bundles/`.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::release::discovery::Discovery;

/// The newest shipped bundle's manifest, compiled in.
const MANIFEST: &str = include_str!("../../../bundles/istio-1.9.5/bundle.yaml");

/// The parts of the newest shipped bundle's manifest needed without a bundle.
#[derive(Debug, Deserialize)]
pub struct Shipped {
    /// The product releases are recorded under.
    pub name: String,
    /// Where the control plane lives unless told otherwise.
    pub namespace: String,
    pub discovery: Discovery,
}

/// The newest shipped bundle's facts.
pub fn newest() -> &'static Shipped {
    static NEWEST: LazyLock<Shipped> = LazyLock::new(|| {
        serde_yaml::from_str(MANIFEST).expect("the newest shipped manifest parses (tested)")
    });
    &NEWEST
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::bundle::Bundle;

    /// The compiled-in facts are the newest bundle's (add a release: point `MANIFEST` at
    /// it).
    #[test]
    fn the_compiled_in_facts_are_the_newest_shipped_bundles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let latest = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            // bundles/ also holds files that are not bundles (sim-webhooks.yaml).
            .filter(|path| path.join(crate::release::bundle::MANIFEST_FILE).is_file())
            .map(|path| Bundle::load(&path).unwrap())
            .max_by(|a, b| a.version().cmp(b.version()))
            .expect("bundles are shipped");
        let version = latest.version();
        assert!(
            MANIFEST.contains(&format!("\nversion: {version}\n")),
            "the compiled-in manifest is not the newest bundle's ({version})"
        );
        let facts = newest();
        assert_eq!(facts.name, latest.manifest.name);
        assert_eq!(facts.namespace, latest.manifest.namespace);
        assert_eq!(facts.discovery, latest.manifest.discovery);
    }
}
