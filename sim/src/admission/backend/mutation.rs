//! What a backend adds to an object: its templates with the server's facts
//! filled in (`${name}`), merged into the object.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Merges `add` (overwriting) and `add_if_absent` (keeping what the object
/// has) into `object`, both with `${name}` replaced by the facts. Returns false,
/// leaving the object alone, when it already has a named item (`name`) that
/// would be appended: the webhook has run on it before, and Kubernetes would
/// reject the duplicate anyway.
pub fn apply(
    object: &mut Value,
    add: &Value,
    add_if_absent: &Value,
    facts: &BTreeMap<String, String>,
) -> bool {
    let add = resolve(add, facts);
    let add_if_absent = resolve(add_if_absent, facts);
    if has_named_item(object, &add) {
        return false;
    }
    for (patch, overwrite) in [(add, true), (add_if_absent, false)] {
        if !patch.is_null() {
            merge(object, &patch, overwrite);
        }
    }
    true
}

/// The names of the `${name}` placeholders in every string of a template;
/// an error for an unterminated one.
pub fn placeholders(template: &Value) -> impl Iterator<Item = Result<String, String>> + '_ {
    strings(template).flat_map(|s| {
        let mut found = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    found.push(Ok(after[..end].to_string()));
                    rest = &after[end + 1..];
                }
                None => {
                    found.push(Err(format!("unterminated `${{` in {s:?}")));
                    break;
                }
            }
        }
        found
    })
}

fn strings(v: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        Value::String(s) => Box::new(std::iter::once(s.as_str())),
        Value::Array(a) => Box::new(a.iter().flat_map(strings)),
        Value::Object(m) => Box::new(m.values().flat_map(strings)),
        _ => Box::new(std::iter::empty()),
    }
}

/// The template with facts substituted; labels and annotations whose value
/// comes out empty are dropped (a fact the server does not have adds nothing).
fn resolve(template: &Value, facts: &BTreeMap<String, String>) -> Value {
    let mut v = substitute(template, facts);
    for section in ["labels", "annotations"] {
        if let Some(m) = v
            .pointer_mut(&format!("/metadata/{section}"))
            .and_then(Value::as_object_mut)
        {
            m.retain(|_, val| val.as_str() != Some(""));
        }
    }
    v
}

fn substitute(v: &Value, facts: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(facts.iter().fold(s.clone(), |s, (name, value)| {
            s.replace(&format!("${{{name}}}"), value)
        })),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, facts)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, facts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether a list the patch appends to already holds an item of the same `name`.
fn has_named_item(target: &Value, patch: &Value) -> bool {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => p
            .iter()
            .any(|(k, pv)| t.get(k).is_some_and(|tv| has_named_item(tv, pv))),
        (Value::Array(t), Value::Array(p)) => p
            .iter()
            .filter_map(|i| i.get("name"))
            .any(|n| t.iter().any(|existing| existing.get("name") == Some(n))),
        _ => false,
    }
}

/// Maps merge key by key, lists are appended to, other values are set;
/// without `overwrite` only where the object has no value yet.
fn merge(target: &mut Value, patch: &Value, overwrite: bool) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_maps(t, p, overwrite),
        (Value::Array(t), Value::Array(p)) if overwrite => t.extend(p.iter().cloned()),
        (t, p) if overwrite || t.is_null() => *t = p.clone(),
        _ => {}
    }
}

fn merge_maps(target: &mut Map<String, Value>, patch: &Map<String, Value>, overwrite: bool) {
    for (k, pv) in patch {
        match target.get_mut(k) {
            Some(tv) => merge(tv, pv, overwrite),
            None => {
                target.insert(k.clone(), pv.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> BTreeMap<String, String> {
        BTreeMap::from([("tag".into(), "2.0".into()), ("team".into(), String::new())])
    }

    #[test]
    fn fills_in_facts_and_merges() {
        let mut pod = json!({"metadata": {"labels": {"keep": "me", "tier": "web"}},
            "spec": {"containers": [{"name": "app"}]}});
        let add = json!({"metadata": {"labels": {"tier": "mesh", "team": "${team}"}},
            "spec": {"containers": [{"name": "agent", "image": "example.com/agent:${tag}", "args": ["$(POD_NAME)"]}]}});
        let if_absent = json!({"metadata": {"labels": {"keep": "other", "new": "x"}}});
        assert!(apply(&mut pod, &add, &if_absent, &facts()));
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"keep": "me", "tier": "mesh", "new": "x"}},
                "spec": {"containers": [{"name": "app"},
                    {"name": "agent", "image": "example.com/agent:2.0", "args": ["$(POD_NAME)"]}]}})
        );
    }

    #[test]
    fn an_object_already_holding_a_named_item_is_left_alone() {
        let mut pod = json!({"spec": {"containers": [{"name": "app"}, {"name": "agent"}]}});
        let before = pod.clone();
        let add = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "agent"}]}});
        assert!(!apply(&mut pod, &add, &Value::Null, &facts()));
        assert_eq!(pod, before);
    }

    #[test]
    fn finds_placeholders() {
        let t = json!({"a": ["${x} and ${y}", {"b": "$(NOT_ONE)"}], "c": "${z"});
        let found: Vec<_> = placeholders(&t).collect();
        assert_eq!(
            found,
            vec![
                Ok("x".into()),
                Ok("y".into()),
                Err("unterminated `${` in \"${z\"".into())
            ]
        );
    }
}
