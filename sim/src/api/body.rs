//! Request bodies: decoding, strict field validation, DeleteOptions, patch
//! types.

use super::query::dry_run;
use crate::cluster::{DeleteOpts, PatchType, Propagation};
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use axum::body::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;

/// `fieldValidation=Strict`: unknown top-level and metadata fields of built-in
/// kinds are errors (there is no full schema; nested fields are not checked).
pub(super) fn strict_check(
    rt: &ResourceType,
    q: &HashMap<String, String>,
    body: &Value,
) -> ApiResult<()> {
    if q.get("fieldValidation").map(String::as_str) != Some("Strict") || rt.custom {
        return Ok(());
    }
    let Some(m) = body.as_object() else {
        return Ok(());
    };
    let extra: &[&str] = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "configmaps") => &["data", "binaryData", "immutable"],
        ("", "secrets") => &["data", "stringData", "type", "immutable"],
        ("", "serviceaccounts") => &[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ],
        ("", "endpoints") => &["subsets"],
        ("", "events") | ("events.k8s.io", "events") => return Ok(()),
        ("rbac.authorization.k8s.io", "roles") | ("rbac.authorization.k8s.io", "clusterroles") => {
            &["rules", "aggregationRule"]
        }
        ("rbac.authorization.k8s.io", _) => &["subjects", "roleRef"],
        ("admissionregistration.k8s.io", _) => &["webhooks"],
        _ => &["spec"],
    };
    let strict_err = |f: &str| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: unknown field \"{f}\"",
            rt.kind, rt.version, rt.kind
        ))
    };
    for k in m.keys() {
        if !k.starts_with('$')
            && !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
            && !extra.contains(&k.as_str())
        {
            return Err(strict_err(k));
        }
    }
    if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
        for k in meta.keys() {
            if !matches!(
                k.as_str(),
                "name"
                    | "generateName"
                    | "namespace"
                    | "labels"
                    | "annotations"
                    | "ownerReferences"
                    | "finalizers"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "managedFields"
                    | "selfLink"
            ) {
                return Err(strict_err(&format!("metadata.{k}")));
            }
        }
    }
    Ok(())
}

pub(super) fn decode_body(body: &Bytes, ct: &str) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if ct.contains("yaml") {
        return serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_media(format!(
            "unsupported media type {ct:?}; use application/json"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

pub(super) fn delete_opts(q: &HashMap<String, String>, body: &Bytes) -> ApiResult<DeleteOpts> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let policy = q.get("propagationPolicy").cloned().or_else(|| {
        b.get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from)
    });
    let orphan = q.get("orphanDependents").is_some_and(|v| v == "true")
        || b.get("orphanDependents").and_then(Value::as_bool) == Some(true);
    let propagation = match policy.as_deref() {
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some("Background") | None if !orphan => Propagation::Background,
        None => Propagation::Orphan,
        Some(other) => {
            if other == "Background" {
                Propagation::Background
            } else {
                return Err(ApiError::bad_request(format!(
                    "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
    };
    let dry_run = dry_run(q)
        || b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    Ok(DeleteOpts {
        dry_run,
        propagation,
        uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from),
        resource_version: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
    })
}

/// The patch type a Content-Type names.
pub(super) fn patch_type(content_type: &str) -> ApiResult<PatchType> {
    Ok(match content_type.split(';').next().unwrap_or("").trim() {
        "application/merge-patch+json" => PatchType::Merge,
        "application/json-patch+json" => PatchType::Json,
        "application/strategic-merge-patch+json" => PatchType::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
        other => {
            return Err(ApiError::unsupported_media(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
            )));
        }
    })
}
