//! Facts of a simulated webhook server: read from the pod template of the
//! Deployment(s) its Service selects, the way the real server would know its
//! own image and environment. A new version of the server's Deployment is
//! what later admissions see (the template, not running pods).

use super::ServerFact;
use crate::selector::LabelSelector;
use crate::store::{Obj, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every fact by name; `None` when one cannot be read and has no default.
pub fn facts(
    store: &Store,
    webhook: &Value,
    wanted: &BTreeMap<String, ServerFact>,
) -> Option<BTreeMap<String, String>> {
    if wanted.is_empty() {
        return Some(BTreeMap::new());
    }
    let servers = server_deployments(store, webhook);
    let specs: Vec<&Value> = servers
        .iter()
        .filter_map(|d| d.value.pointer("/spec/template/spec"))
        .collect();
    facts_of(&specs, wanted)
}

/// Every fact by name, read from the first of the server's pod specs that has it.
pub fn facts_of(
    specs: &[&Value],
    wanted: &BTreeMap<String, ServerFact>,
) -> Option<BTreeMap<String, String>> {
    wanted
        .iter()
        .map(|(name, fact)| {
            let value = specs
                .iter()
                .find_map(|s| read(s, fact))
                .or_else(|| fact.default.clone())?;
            let value = if fact.empty_if.as_ref() == Some(&value) {
                String::new()
            } else {
                value
            };
            Some((name.clone(), value))
        })
        .collect()
}

/// The Deployments, by name, whose pods the Service named in the webhook's
/// `clientConfig.service` selects (none for a URL webhook or a missing Service).
fn server_deployments(store: &Store, webhook: &Value) -> Vec<Arc<Obj>> {
    let service = |k: &str| {
        webhook
            .pointer(&format!("/clientConfig/service/{k}"))
            .and_then(Value::as_str)
    };
    let (Some(ns), Some(name)) = (service("namespace"), service("name")) else {
        return Vec::new();
    };
    let Some(svc) = store.get("/services", ns, name) else {
        return Vec::new();
    };
    // A Service without a selector selects no pods.
    let Some(selector) = svc
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .map(LabelSelector::from_map)
    else {
        return Vec::new();
    };
    let (deployments, _, _) = store.list("apps/deployments", Some(ns), None, 0, &|d| {
        selector.matches(
            d.value
                .pointer("/spec/template/metadata/labels")
                .and_then(Value::as_object),
        )
    });
    deployments
}

/// A fact from a pod spec (a Deployment's template, or a running server's own pod).
fn read(spec: &Value, fact: &ServerFact) -> Option<String> {
    let container = spec
        .get("containers")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["name"] == fact.container.as_str())?;
    if let Some(var) = &fact.env {
        return container
            .get("env")
            .and_then(Value::as_array)?
            .iter()
            .find(|e| e["name"] == var.as_str())?
            .get("value")?
            .as_str()
            .map(String::from);
    }
    let image = container.get("image").and_then(Value::as_str)?;
    if fact.image_prefix {
        image_prefix(image).map(String::from)
    } else {
        Some(image_tag(image))
    }
}

/// What precedes an image reference's last name component: its registry and
/// path (`example.com/team` of `example.com/team/server:2.1@sha256:…`); none
/// when it has no `/`.
pub fn image_prefix(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    name.rsplit_once('/').map(|(prefix, _)| prefix)
}

/// The tag of an image reference; `latest` when it names none (a `:` inside
/// the registry host, as in `host:5000/img`, is not a tag).
pub fn image_tag(image: &str) -> String {
    image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| "latest".into())
}

#[cfg(test)]
mod tests {
    use super::{image_prefix, image_tag};

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("example.com/injector:1.7.8"), "1.7.8");
        assert_eq!(image_tag("example.com/injector"), "latest");
        assert_eq!(image_tag("localhost:5000/injector"), "latest");
        assert_eq!(image_tag("localhost:5000/injector:v2"), "v2");
    }

    #[test]
    fn image_prefixes() {
        assert_eq!(
            image_prefix("example.com/team/injector:1.7.8"),
            Some("example.com/team")
        );
        assert_eq!(
            image_prefix("localhost:5000/injector"),
            Some("localhost:5000")
        );
        assert_eq!(
            image_prefix("example.com/injector@sha256:ab/cd"),
            Some("example.com")
        );
        assert_eq!(image_prefix("injector:1.0"), None);
    }
}
