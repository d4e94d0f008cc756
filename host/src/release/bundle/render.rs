//! Rendering a bundle's templates from merged values into Kubernetes objects.
//!
//! The output is exactly reproducible: the same bundle and values give a
//! byte-identical manifest (values are sorted maps, templates run in file order).

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::release::bundle::{self, Bundle, Component};

use crate::base::object::{COMPONENT_LABEL, MANAGED_BY, MANAGER, Object, Rendered};

/// Whether a component is switched on by its `enabled` path (`components.pilot.enabled`,
/// `components.ingressGateways[0].enabled`).
pub fn enabled(component: &Component, spec: &Value) -> bool {
    let Some(path) = &component.enabled else {
        return true;
    };
    let mut cur = spec;
    for k in path.split('.') {
        cur = match k.split_once('[') {
            Some((key, idx)) => {
                let i: usize = idx.trim_end_matches(']').parse().unwrap_or(usize::MAX);
                &cur[key][i]
            }
            None => &cur[k],
        };
    }
    cur.as_bool().unwrap_or(false)
}

/// Render every enabled component of `bundle` with `spec` (a merged IstioOperator spec).
/// Templates see the spec's top-level fields (`hub`, `tag`, `meshConfig`, `values`,
/// `components`) plus `namespace`, `revision` and `bundle`.
/// Render every profile of the bundle once, so that a template mistake is found when the
/// bundle is loaded, whichever profile the user later picks.
pub fn lint(bundle: &Bundle) -> bundle::Result<()> {
    for (name, tree) in &bundle.profiles {
        render(bundle, &bundle.with_charts(tree), "default").map_err(|e| {
            bundle::Error::Render {
                dir: bundle.dir.clone(),
                profile: name.clone(),
                message: format!("{e:#}"),
            }
        })?;
    }
    Ok(())
}

pub fn render(bundle: &Bundle, spec: &Value, revision: &str) -> anyhow::Result<Rendered> {
    let mut env = Environment::new();
    // A template reading a value the profile does not have is a bundle bug: fail loudly.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("k8s_string", k8s_string);
    let mut context = spec.as_object().cloned().unwrap_or_default();
    context.insert("namespace".into(), json!(bundle.namespace()));
    context.insert("revision".into(), json!(revision));
    context.insert(
        "bundle".into(),
        json!({"name": bundle.manifest.name, "version": bundle.manifest.version.to_string()}),
    );
    let ctx = minijinja::Value::from(minijinja::value::Serde(Value::Object(context)));
    let mut common = BTreeMap::new();
    for (k, v) in &bundle.manifest.labels {
        let v = env
            .render_str(v, ctx.clone())
            .map_err(|e| anyhow::anyhow!("bundle.yaml: label {k}: {}", describe(&e)))?;
        common.insert(k.clone(), v);
    }
    let mut objects = Vec::new();
    for component in &bundle.manifest.components {
        if !enabled(component, spec) {
            continue;
        }
        for t in &bundle.templates[&component.name] {
            let text = env.render_str(&t.source, ctx.clone()).map_err(|e| {
                anyhow::anyhow!(
                    "templates/{}:{}: {}",
                    t.name,
                    e.line().unwrap_or(0),
                    describe(&e)
                )
            })?;
            // minijinja drops a template's final newline; without it a block scalar that
            // ends the file would change from `|` to `|-` between releases.
            let text = if text.ends_with('\n') {
                text
            } else {
                text + "\n"
            };
            for mut doc in split_documents(&t.name, &text)? {
                overlay_env_by_name(&mut doc);
                objects.push(label(component, &common, &t.name, doc)?);
            }
        }
    }
    Ok(Rendered { objects })
}

/// A component's `k8s.env` is laid over its container's variables the way istioctl lays it
/// (a strategic merge keyed by `name`): templates list the chart's variables, then
/// `k8s.env`, and a later entry of a name replaces the earlier one where that one stood.
/// (Istio's profiles set variables the charts set too, `POD_NAME`, `ISTIO_META_ROUTER_MODE`.)
fn overlay_env_by_name(object: &mut Value) {
    // (`pointer_mut`, not indexing: indexing would add the path to objects without it.)
    let containers = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut);
    for c in containers.into_iter().flatten() {
        let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) else {
            continue;
        };
        let mut merged: Vec<Value> = Vec::with_capacity(env.len());
        for e in env.drain(..) {
            match merged
                .iter_mut()
                .find(|m| m["name"].is_string() && m["name"] == e["name"])
            {
                Some(slot) => *slot = e,
                None => merged.push(e),
            }
        }
        *env = merged;
    }
}

/// A scalar as a Kubernetes string field holds it (`true` → `"true"`, `5` → `"5"`), for
/// annotations and labels; Jinja's own `string` writes Python's `True`.
fn k8s_string(v: minijinja::Value) -> String {
    match v.kind() {
        minijinja::value::ValueKind::Bool => v.is_true().to_string(),
        minijinja::value::ValueKind::None | minijinja::value::ValueKind::Undefined => String::new(),
        _ => v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
    }
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(d) => format!("{} ({d})", e.kind()),
        None => e.kind().to_string(),
    }
}

fn split_documents(name: &str, text: &str) -> anyhow::Result<Vec<Value>> {
    let mut docs = Vec::new();
    for de in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(de).map_err(|e| {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            anyhow::anyhow!(
                "templates/{name}: rendered YAML is invalid at rendered line {line}: {e}"
            )
        })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn label(
    component: &Component,
    common: &BTreeMap<String, String>,
    source: &str,
    mut v: Value,
) -> anyhow::Result<Object> {
    for field in ["apiVersion", "kind"] {
        if !v[field].is_string() {
            anyhow::bail!("templates/{source}: an object has no `{field}`");
        }
    }
    if !v["metadata"]["name"].is_string() {
        anyhow::bail!(
            "templates/{source}: a {} has no metadata.name",
            v["kind"].as_str().unwrap_or("?")
        );
    }
    let labels = v["metadata"]
        .as_object_mut()
        .map(|m| m.entry("labels").or_insert_with(|| json!({})))
        .ok_or_else(|| anyhow::anyhow!("templates/{source}: metadata is not a mapping"))?;
    for (k, v) in common.iter().chain(&component.labels) {
        labels[k] = json!(v);
    }
    labels[MANAGED_BY] = json!(MANAGER);
    labels[COMPONENT_LABEL] = json!(component.name);
    Ok(Object {
        component: component.name.clone(),
        source: source.to_string(),
        value: v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_become_the_strings_kubernetes_stores() {
        let v = |j: Value| k8s_string(minijinja::Value::from(minijinja::value::Serde(j)));
        assert_eq!(v(json!(true)), "true");
        assert_eq!(v(json!(false)), "false");
        assert_eq!(v(json!(5)), "5");
        assert_eq!(v(json!("x")), "x");
        assert_eq!(v(Value::Null), "");
    }

    #[test]
    fn later_env_entries_replace_earlier_ones_in_place() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [
            {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "3"},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}}});
        overlay_env_by_name(&mut d);
        let mut namespace = json!({"kind": "Namespace", "metadata": {"name": "x"}});
        overlay_env_by_name(&mut namespace);
        assert_eq!(
            namespace,
            json!({"kind": "Namespace", "metadata": {"name": "x"}})
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "A", "value": "3"}, {"name": "B", "value": "2"},
                   {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
        );
    }
}
