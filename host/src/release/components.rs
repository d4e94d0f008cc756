//! What a component is, read from the objects a release renders for it: the workloads
//! that say it is up, the namespaces it lives in, and its role. A source that only renders
//! objects tagged by component (Helm charts, istioctl) needs to state nothing more; a
//! bundle states them, and a test holds the two to agree.

use std::collections::BTreeSet;

use meshup_vocab::Selector;

use crate::base::object::{Object, Rendered};
use crate::release::discovery::Discovery;
use crate::release::source::{ReadinessRef, Role};

fn of<'a>(rendered: &'a Rendered, component: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
    rendered
        .objects
        .iter()
        .filter(move |o| o.component == component)
}

fn is_workload(o: &Object) -> bool {
    matches!(o.kind(), "Deployment" | "DaemonSet")
}

/// The component's Deployments and DaemonSets, each in its own namespace.
pub fn readiness(rendered: &Rendered, component: &str) -> Vec<ReadinessRef> {
    of(rendered, component)
        .filter(|o| is_workload(o))
        .map(|o| ReadinessRef {
            kind: o.kind().to_string(),
            name: o.name().to_string(),
            namespace: o.namespace().map(str::to_string),
        })
        .collect()
}

/// The namespaces the component's namespaced objects live in.
pub fn namespaces(rendered: &Rendered, component: &str) -> BTreeSet<String> {
    of(rendered, component)
        .filter_map(|o| o.namespace().map(str::to_string))
        .collect()
}

/// Its role: `control-plane` when one of its workloads is the control plane (by the
/// release's discovery selector), `gateway` when it runs other workloads, `base` when it
/// runs none (CRDs, RBAC, webhooks).
pub fn role(rendered: &Rendered, component: &str, discovery: &Discovery) -> Role {
    let control_plane = Selector::parse(&discovery.control_plane.selector).ok();
    let mut workloads = of(rendered, component)
        .filter(|o| is_workload(o))
        .peekable();
    if workloads.peek().is_none() {
        return Role::Base;
    }
    let is_control_plane = |o: &Object| {
        control_plane
            .as_ref()
            .is_some_and(|s| s.matches_object(&o.value))
    };
    if workloads.any(is_control_plane) {
        Role::ControlPlane
    } else {
        Role::Gateway
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::bundle::Bundle;
    use crate::release::source::{RenderContext, Source};

    /// Every shipped bundle states its components' roles and readiness workloads; what the
    /// helpers read from its rendered objects (every component on) is the same.
    #[test]
    fn rendered_objects_say_what_the_bundles_state() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        for name in ["istio-1.6.14", "istio-1.7.8", "istio-1.8.6", "istio-1.9.5"] {
            let b = Bundle::load(&dir.join(name)).unwrap();
            let values = b
                .layer(
                    "demo",
                    serde_json::json!({}),
                    serde_json::json!({"components": {"egressGateways": [{"name": "istio-egressgateway", "enabled": true}]}}),
                )
                .unwrap();
            let rendered = b
                .render(
                    &values.merged,
                    RenderContext {
                        revision: "default",
                        kubernetes: None,
                        upgrade: false,
                    },
                )
                .unwrap();
            for c in &b.facts().components {
                assert_eq!(
                    role(&rendered, &c.name, &b.facts().discovery),
                    c.role,
                    "{name} {}",
                    c.name
                );
                let derived: Vec<(String, String)> = readiness(&rendered, &c.name)
                    .into_iter()
                    .map(|r| (r.kind, r.name))
                    .collect();
                let stated: Vec<(String, String)> = c
                    .readiness
                    .iter()
                    .map(|r| (r.kind.clone(), r.name.clone()))
                    .collect();
                assert_eq!(derived, stated, "{name} {}", c.name);
                let ns = namespaces(&rendered, &c.name);
                assert!(
                    ns.iter().all(|n| n == &b.facts().namespace),
                    "{name} {}: {ns:?}",
                    c.name
                );
            }
        }
    }
}
