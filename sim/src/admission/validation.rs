//! Validation on create and update: names, labels, and the per-kind rules
//! meshup's writes can break (templates, immutable fields, CRD names).

use super::valid_name;
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::util::get_str;
use serde_json::Value;

fn check_template(kind: &str, name: &str, obj: &Value) -> ApiResult<()> {
    let sel = obj
        .pointer("/spec/selector")
        .ok_or_else(|| ApiError::invalid(kind, name, "spec.selector: Required value"))?;
    let sel = LabelSelector::from_object(sel).map_err(|e| ApiError::invalid(kind, name, e))?;
    if sel.is_empty() {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.selector: Invalid value: empty selector is invalid for deployment",
        ));
    }
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    if !sel.matches(labels) {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
        ));
    }
    check_containers(
        kind,
        name,
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
    )
}

fn check_containers(kind: &str, name: &str, spec: Option<&Value>, at: &str) -> ApiResult<()> {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid(kind, name, format!("{at}.containers: Required value")))?;
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("{at}.containers[{i}].{field}: Required value"),
                ));
            }
        }
    }
    Ok(())
}

/// Validation on create and update (`old` is the stored object on update).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let kind = rt.kind.as_str();
    validate_metadata(rt, obj, name)?;
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") | ("apps", "replicasets") | ("apps", "daemonsets") => {
            validate_workload(kind, name, obj, old)
        }
        ("", "configmaps") | ("", "secrets")
            if old.is_some_and(|o| o.get("immutable") == Some(&Value::Bool(true))) =>
        {
            validate_immutable_data(kind, name, obj, old.unwrap_or(obj))
        }
        ("", "pods") if old.is_none() => check_containers(kind, name, obj.get("spec"), "spec"),
        ("apiextensions.k8s.io", "customresourcedefinitions") => validate_crd_name(kind, name, obj),
        _ => Ok(()),
    }
}

/// A DNS-subdomain name (access reviews have none) and string label values.
fn validate_metadata(rt: &ResourceType, obj: &Value, name: &str) -> ApiResult<()> {
    if !valid_name(name) && !rt.virtual_create {
        return Err(ApiError::invalid(
            &rt.kind,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if let Some(l) = obj.pointer("/metadata/labels")
        && let Some(m) = l.as_object()
        && let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ApiError::bad_request(format!(
            "metadata.labels.{k}: label values must be strings"
        )));
    }
    Ok(())
}

/// Deployments, ReplicaSets, DaemonSets: a valid template, an immutable
/// selector, no negative replicas.
fn validate_workload(kind: &str, name: &str, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    check_template(kind, name, obj)?;
    if let Some(old) = old
        && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
    {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.selector: Invalid value: field is immutable",
        ));
    }
    if obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .is_some_and(|r| r < 0)
    {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.replicas: Invalid value: must be greater than or equal to 0",
        ));
    }
    Ok(())
}

/// An immutable ConfigMap or Secret keeps its data.
fn validate_immutable_data(kind: &str, name: &str, obj: &Value, old: &Value) -> ApiResult<()> {
    for field in ["data", "binaryData", "immutable"] {
        if old.get(field) != obj.get(field) {
            return Err(ApiError::invalid(
                kind,
                name,
                format!("{field}: Forbidden: field is immutable when `immutable` is set"),
            ));
        }
    }
    Ok(())
}

/// A CRD is named `<plural>.<group>`.
fn validate_crd_name(kind: &str, name: &str, obj: &Value) -> ApiResult<()> {
    let types =
        crate::registry::types_from_crd(obj).map_err(|e| ApiError::invalid(kind, name, e))?;
    let t = &types[0];
    let expected = format!("{}.{}", t.plural, t.group);
    if name != expected {
        return Err(ApiError::invalid(
            kind,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
            ),
        ));
    }
    Ok(())
}
