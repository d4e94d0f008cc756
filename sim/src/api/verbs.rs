//! One handler per verb (watch is in `watch`); each takes the parsed
//! [`ResourceRequest`].

use super::body::{decode_body, delete_opts, patch_type, strict_check};
use super::query::{continue_token, parse_continue, selectors};
use super::request::ResourceRequest;
use super::response::{json_response, json_value, obj_response};
use crate::cluster::{Cluster, Patch, PatchType};
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use crate::store::Obj;
use crate::table;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn get(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let o = c.get(&r.rt, r.ns(), r.name())?;
    if table::wants_table(&r.req.accept) {
        let rv = crate::util::get_str(&o.value, &["metadata", "resourceVersion"])
            .unwrap_or("")
            .to_string();
        let full = o.full();
        return Ok(json_value(
            200,
            &table::table(&r.rt, std::iter::once(&full), &rv, None),
        ));
    }
    Ok(obj_response(200, &o.json))
}

/// A page of objects (`limit`/`continue`), filtered by selectors, as a list
/// or as a Table for kubectl.
pub(super) fn list(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let q = r.query();
    let rt = &r.rt;
    let (ls, fs) = selectors(q)?;
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let after = parse_continue(q)?;
    let ns = if rt.namespaced {
        r.path.namespace.as_deref()
    } else {
        None
    };
    let filter = |o: &Obj| {
        (ls.is_empty() || ls.matches_obj(&o.value)) && (fs.is_empty() || fs.matches(&o.value))
    };
    let (items, next, rv) = c.store.list(&rt.key(), ns, after, limit, &filter);
    let cont = next.as_ref().map(continue_token);
    if table::wants_table(&r.req.accept) {
        let full: Vec<Value> = items.iter().map(|o| o.full()).collect();
        let t = table::table(rt, full.iter(), &rv.to_string(), cont.as_deref());
        return Ok(json_value(200, &t));
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(cont) = cont {
        meta["continue"] = json!(cont);
    }
    Ok(json_response(200, list_json(rt, &meta, &items)))
}

/// The list document, spliced from the store's serialized objects rather
/// than re-serialized (lists of pods are large).
fn list_json(rt: &ResourceType, meta: &Value, items: &[Arc<Obj>]) -> Vec<u8> {
    let head = format!(
        "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        rt.list_kind(),
        rt.api_version(),
        meta
    );
    let total: usize = items.iter().map(|i| i.json.len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + total + 4);
    out.extend_from_slice(head.as_bytes());
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&it.json);
    }
    out.extend_from_slice(b"]}");
    out
}

pub(super) fn create(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    if r.path.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "POST is not allowed on a named resource",
        ));
    }
    let body = decode_body(&r.req.body, &r.req.content_type)?;
    strict_check(&r.rt, r.query(), &body)?;
    let v = c.create(&r.rt, r.ns(), body, &r.write_opts())?;
    Ok(json_value(201, &v))
}

pub(super) fn update(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let body = decode_body(&r.req.body, &r.req.content_type)?;
    strict_check(&r.rt, r.query(), &body)?;
    let v = c.update(&r.rt, r.ns(), r.name(), body, &r.write_opts(), r.sub())?;
    Ok(json_value(200, &v))
}

/// Every patch type, server-side apply included; 201 when apply created the
/// object.
pub(super) fn patch(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let ty = patch_type(&r.req.content_type)?;
    if ty != PatchType::Apply && r.query().contains_key("force") {
        return Err(ApiError::bad_request(
            "force: Forbidden: may not be specified for non-apply patch",
        ));
    }
    strict_check_patch(r, ty)?;
    let patch = Patch {
        ty,
        body: &r.req.body,
    };
    let (v, created) = c.patch(&r.rt, r.ns(), r.name(), patch, &r.write_opts(), r.sub())?;
    Ok(json_value(if created { 201 } else { 200 }, &v))
}

/// Strict field validation of a patch body that is an object shape (a JSON
/// patch is a list of operations); an undecodable body is left to the patch
/// itself to report.
fn strict_check_patch(r: &ResourceRequest, ty: PatchType) -> ApiResult<()> {
    let body = &r.req.body;
    let parsed: Option<Value> = match ty {
        PatchType::Json => None,
        PatchType::Apply => serde_yaml::from_slice(body).ok(),
        _ => serde_json::from_slice(body).ok(),
    };
    match parsed {
        Some(p) => strict_check(&r.rt, r.query(), &p),
        None => Ok(()),
    }
}

/// 202 while finalizers keep the object, 200 once it is gone.
pub(super) fn delete(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let d = delete_opts(r.query(), &r.req.body)?;
    let v = c.delete(&r.rt, r.ns(), r.name(), &d)?;
    let pending = v.pointer("/metadata/deletionTimestamp").is_some() && !d.dry_run;
    Ok(json_value(if pending { 202 } else { 200 }, &v))
}

/// Deletes what the selectors match; objects that fail to delete are left
/// out of the answer.
pub(super) fn delete_collection(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let rt = &r.rt;
    let d = delete_opts(r.query(), &r.req.body)?;
    let (ls, fs) = selectors(r.query())?;
    let ns = if rt.namespaced {
        r.path.namespace.as_deref()
    } else {
        None
    };
    let (items, _, _) = c.store.list(&rt.key(), ns, None, 0, &|o| {
        ls.matches_obj(&o.value) && fs.matches(&o.value)
    });
    let deleted: Vec<Value> = items
        .iter()
        .filter_map(|o| c.delete(rt, o.namespace(), o.name(), &d).ok())
        .collect();
    Ok(json_value(
        200,
        &json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted}),
    ))
}
