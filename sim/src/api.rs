//! HTTP front: routing, faults, request log, verbs, watch streaming.

use crate::cluster::{Cluster, DeleteOpts, PatchType, Propagation, WriteOpts};
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::faults::{Decision, FaultConfig, Faults, RequestRecord};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Since;
use crate::table;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub addr: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub type App = Arc<AppState>;

/// The TCP listener; during a `refuse` outage it closes new API connections
/// (peeking at the request line so `/sim/` requests still get through).
pub struct SimListener {
    pub inner: ::tokio::net::TcpListener,
    pub cluster: Arc<Cluster>,
}

impl axum::serve::Listener for SimListener {
    type Io = ::tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (s, a) = match self.inner.accept().await {
                Ok(x) => x,
                Err(_) => {
                    ::tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let refusing = self
                .cluster
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .refusing();
            if !refusing {
                return (s, a);
            }
            let mut buf = [0u8; 16];
            let n = match ::tokio::time::timeout(Duration::from_millis(500), s.peek(&mut buf)).await
            {
                Ok(Ok(n)) => n,
                _ => 0,
            };
            let head = String::from_utf8_lossy(&buf[..n]);
            if head
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with("/sim/"))
            {
                return (s, a);
            }
            drop(s);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

pub fn router(state: App) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state)
}

fn json_response(code: u16, body: Vec<u8>) -> Response {
    let mut r = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn json_value(code: u16, v: &Value) -> Response {
    json_response(code, serde_json::to_vec(v).unwrap_or_default())
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for part in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        m.insert(pct_decode(k), pct_decode(v));
    }
    m
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A parsed resource request path.
#[derive(Debug, Clone, PartialEq)]
pub struct ResPath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub sub: Option<String>,
}

/// `None` for non-resource paths; `Some(Err)` for discovery of a group/version.
pub fn parse_path(path: &str) -> Option<Result<ResPath, (String, String)>> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Err((group, version)));
    }
    let (namespace, rest) = if rest[0] == "namespaces"
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"))
    {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    Some(Ok(ResPath {
        group,
        version,
        namespace,
        resource: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    }))
}

fn verb_of(method: &Method, rp: &ResPath, q: &HashMap<String, String>, ct: &str) -> &'static str {
    let watch = q.get("watch").is_some_and(|v| v == "true" || v == "1");
    match (method.as_str(), rp.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) if ct.starts_with("application/apply-patch") => "apply",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "",
    }
}

async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path.starts_with("/sim/") {
        return sim_endpoint(&app, &method, &path, uri.query(), &body);
    }
    let started = Instant::now();
    let q = parse_query(uri.query());
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let rp = parse_path(&path).and_then(|r| r.ok());
    let verb = rp
        .as_ref()
        .map(|rp| verb_of(&method, rp, &q, &ct))
        .unwrap_or("");
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (latency, decision) = {
        let mut f = app.cluster.faults.lock().unwrap_or_else(|e| e.into_inner());
        (
            f.latency(method.as_str(), &path),
            f.decide(method.as_str(), &path),
        )
    };
    if !latency.is_zero() {
        ::tokio::time::sleep(latency).await;
    }
    let refusing = app
        .cluster
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .refusing();
    let mut resp = match decision {
        Decision::Fail(409) => {
            let (g, r, n) = rp
                .as_ref()
                .map(|rp| {
                    (
                        rp.group.clone(),
                        rp.resource.clone(),
                        rp.name.clone().unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            ApiError::conflict(&g, &r, &n, "the object has been modified; please apply your changes to the latest version and try again")
                .into_response()
        }
        Decision::Fail(500) => {
            ApiError::internal("simulated internal error (fault injection)").into_response()
        }
        Decision::Fail(503) => ApiError::unavailable(
            "simulated outage: the server is currently unable to handle the request",
        )
        .into_response(),
        Decision::Fail(code) => ApiError::new(
            code,
            "InternalError",
            format!("simulated error {code} (fault injection)"),
        )
        .into_response(),
        Decision::Throttle(secs) => ApiError::too_many(secs).into_response(),
        Decision::Pass => {
            match dispatch(&app, &method, &path, &q, &headers, &ct, &ua, body).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
    };
    if refusing {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let virtual_create = rp.as_ref().is_some_and(|rp| {
        rp.resource.ends_with("accessreviews") || rp.resource.ends_with("selfsubjectrulesreviews")
    });
    let mutating = matches!(
        verb,
        "create" | "update" | "patch" | "apply" | "delete" | "deletecollection"
    ) && !dry_run
        && !virtual_create;
    let rec = RequestRecord {
        time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or("").to_string(),
        verb: verb.to_string(),
        status: resp.status().as_u16(),
        mutating,
        dry_run,
        user_agent: ua,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    app.cluster
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(rec);
    resp
}

fn sim_endpoint(
    app: &App,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Response {
    let c = &app.cluster;
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/sim/v1/faults") => {
            let f = c.faults.lock().unwrap_or_else(|e| e.into_inner());
            json_value(200, &serde_json::to_value(&f.cfg).unwrap_or_default())
        }
        ("PUT", "/sim/v1/faults") | ("POST", "/sim/v1/faults") => {
            let cfg: FaultConfig =
                match serde_json::from_slice(body).or_else(|_| serde_yaml::from_slice(body)) {
                    Ok(c) => c,
                    Err(e) => {
                        return ApiError::bad_request(format!("invalid fault configuration: {e}"))
                            .into_response();
                    }
                };
            *c.faults.lock().unwrap_or_else(|e| e.into_inner()) = Faults::new(cfg.clone());
            let _ = c.wake.send(String::new());
            json_value(200, &serde_json::to_value(&cfg).unwrap_or_default())
        }
        ("DELETE", "/sim/v1/faults") => {
            *c.faults.lock().unwrap_or_else(|e| e.into_inner()) =
                Faults::new(FaultConfig::default());
            json_value(200, &json!({}))
        }
        ("GET", "/sim/v1/requests") => {
            let q = parse_query(query);
            let only_mutating = q.get("mutating").is_some_and(|v| v == "true");
            let log = c.log.lock().unwrap_or_else(|e| e.into_inner());
            let items: Vec<_> = log
                .entries
                .iter()
                .filter(|r| !only_mutating || r.mutating)
                .collect();
            json_value(200, &json!({"requests": items}))
        }
        ("DELETE", "/sim/v1/requests") => {
            c.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entries
                .clear();
            json_value(200, &json!({"requests": []}))
        }
        ("GET", "/sim/v1/healthz") => json_value(200, &json!({"ok": true})),
        _ => ApiError::new(
            404,
            "NotFound",
            format!("no simulator endpoint {method} {path}"),
        )
        .into_response(),
    }
}

fn k8s_version(app: &App) -> String {
    let f = app.cluster.faults.lock().unwrap_or_else(|e| e.into_inner());
    f.cfg
        .kubernetes_version
        .clone()
        .unwrap_or_else(|| app.cluster.version.read().expect("version lock").clone())
}

pub fn version_json(v: &str) -> Value {
    let trimmed = v.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("30");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{trimmed}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

#[allow(clippy::too_many_arguments)]
async fn dispatch(
    app: &App,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    ct: &str,
    ua: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let c = &app.cluster;
    let p = path.trim_end_matches('/');
    match p {
        "/version" => return Ok(json_value(200, &version_json(&k8s_version(app)))),
        "/healthz" | "/readyz" | "/livez" => return Ok((StatusCode::OK, "ok").into_response()),
        "/api" => return Ok(json_value(200, &discovery::api_versions(&app.addr))),
        "/apis" => return Ok(json_value(200, &discovery::api_group_list(&c.registry))),
        "/openapi/v3" => return Ok(json_value(200, &discovery::openapi_index(&c.registry))),
        _ => {}
    }
    if let Some(gv) = p.strip_prefix("/openapi/v3/") {
        let segs: Vec<&str> = gv.split('/').collect();
        let (g, v) = match segs.as_slice() {
            ["api", v] => ("", *v),
            ["apis", g, v] => (*g, *v),
            _ => {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ));
            }
        };
        return discovery::openapi_gv(&c.registry, g, v, &k8s_version(app))
            .map(|d| json_value(200, &d))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            });
    }
    if let Some(g) = p.strip_prefix("/apis/")
        && !g.contains('/')
    {
        return discovery::api_group(&c.registry, g)
            .map(|d| json_value(200, &d))
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )
            });
    }
    let rp = match parse_path(p) {
        None => {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        Some(Err((g, v))) => {
            return discovery::resource_list(&c.registry, &g, &v)
                .map(|d| json_value(200, &d))
                .ok_or_else(|| {
                    ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )
                });
        }
        Some(Ok(rp)) => rp,
    };
    let rt = c
        .registry
        .lookup(&rp.group, &rp.version, &rp.resource)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        })?;
    if rt.namespaced != rp.namespace.is_some()
        && !(rt.namespaced && rp.name.is_none() && method == Method::GET)
    {
        if rt.namespaced && method != Method::GET && rp.name.is_none() && method != Method::DELETE {
            return Err(ApiError::bad_request(
                "a namespace is required for this resource",
            ));
        }
        if !rt.namespaced {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
    }
    if rp.sub.as_deref() == Some("log")
        && rt.group.is_empty()
        && rt.plural == "pods"
        && method == Method::GET
    {
        let pod = c.get(
            &rt,
            rp.namespace.as_deref().unwrap_or(""),
            rp.name.as_deref().unwrap_or(""),
        )?;
        let container = q.get("container").cloned().unwrap_or_else(|| {
            pod.value
                .pointer("/spec/containers/0/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
        let text = format!(
            "{} simulated log of container {container} in pod {}/{}\n",
            crate::util::now_rfc3339(),
            pod.namespace(),
            pod.name()
        );
        let mut r = (StatusCode::OK, text).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    let scalable = rt.group == "apps" && (rt.plural == "deployments" || rt.plural == "replicasets");
    if rp.sub.as_deref() == Some("scale") && scalable {
        return scale(
            c,
            &rt,
            rp.namespace.as_deref().unwrap_or(""),
            rp.name.as_deref().unwrap_or(""),
            method,
            q,
            ct,
            &body,
        );
    }
    if let Some(sub) = &rp.sub
        && (sub != "status" || !rt.status)
    {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({sub})"),
        ));
    }
    let ns = rp.namespace.clone().unwrap_or_default();
    let verb = verb_of(method, &rp, q, ct);
    if rt.virtual_create && verb != "create" {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({verb})"
        )));
    }
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        let m = ua.split('/').next().unwrap_or("").to_string();
        if m.is_empty() { "unknown".into() } else { m }
    });
    let wo = WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        manager,
        force: q.get("force").is_some_and(|v| v == "true"),
        seed: false,
    };
    if let Some(dr) = q.get("dryRun")
        && dr != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {dr:?}: supported values: \"All\""
        )));
    }
    let name = rp.name.clone().unwrap_or_default();
    let sub = rp.sub.as_deref();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match verb {
        "get" => {
            let o = c.get(&rt, &ns, &name)?;
            if table::wants_table(accept) {
                let rv = crate::util::get_str(&o.value, &["metadata", "resourceVersion"])
                    .unwrap_or("")
                    .to_string();
                let full = o.full();
                return Ok(json_value(
                    200,
                    &table::table(&rt, std::iter::once(&full), &rv, None),
                ));
            }
            Ok(obj_response(200, &o.json))
        }
        "list" => list(
            c,
            &rt,
            rp.namespace.as_deref(),
            q,
            table::wants_table(accept),
        ),
        "watch" => watch(app, rt, rp.namespace.clone(), q),
        "create" => {
            if rp.name.is_some() {
                return Err(ApiError::method_not_allowed(
                    "POST is not allowed on a named resource",
                ));
            }
            let body = decode_body(&body, ct)?;
            strict_check(&rt, q, &body)?;
            let v = c.create(&rt, &ns, body, &wo)?;
            Ok(json_value(201, &v))
        }
        "update" => {
            let body = decode_body(&body, ct)?;
            strict_check(&rt, q, &body)?;
            Ok(json_value(200, &c.update(&rt, &ns, &name, body, &wo, sub)?))
        }
        "patch" | "apply" => {
            let pt = match ct.split(';').next().unwrap_or("").trim() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchType::Apply,
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                    )));
                }
            };
            if pt != PatchType::Apply && q.contains_key("force") {
                return Err(ApiError::bad_request(
                    "force: Forbidden: may not be specified for non-apply patch",
                ));
            }
            if pt != PatchType::Json {
                let parsed: Option<Value> = if pt == PatchType::Apply {
                    serde_yaml::from_slice(&body).ok()
                } else {
                    serde_json::from_slice(&body).ok()
                };
                if let Some(p) = parsed {
                    strict_check(&rt, q, &p)?;
                }
            }
            let (v, created) = c.patch(&rt, &ns, &name, pt, &body, &wo, sub)?;
            Ok(json_value(if created { 201 } else { 200 }, &v))
        }
        "delete" => {
            let d = delete_opts(q, &body)?;
            let v = c.delete(&rt, &ns, &name, &d)?;
            let pending = v.pointer("/metadata/deletionTimestamp").is_some() && !d.dry_run;
            Ok(json_value(if pending { 202 } else { 200 }, &v))
        }
        "deletecollection" => {
            let d = delete_opts(q, &body)?;
            let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
                .map_err(ApiError::bad_request)?;
            let nsf = if rt.namespaced {
                rp.namespace.as_deref()
            } else {
                None
            };
            let (items, _, _) = c.store.list(&rt.key(), nsf, None, 0, &|o| {
                ls.matches_obj(&o.value) && fs.matches(&o.value)
            });
            let mut deleted = Vec::new();
            for o in items {
                if let Ok(v) = c.delete(&rt, o.namespace(), o.name(), &d) {
                    deleted.push(v);
                }
            }
            Ok(json_value(
                200,
                &json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(), "metadata": {}, "items": deleted}),
            ))
        }
        _ => {
            let _ = headers;
            Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )))
        }
    }
}

fn scale_json(o: &Value) -> Value {
    let sel = o
        .pointer("/spec/selector")
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": o.pointer("/metadata/name"),
            "namespace": o.pointer("/metadata/namespace"),
            "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
            "creationTimestamp": o.pointer("/metadata/creationTimestamp"),
        },
        "spec": {"replicas": o.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": o.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": sel},
    })
}

/// The `/scale` subresource of Deployments and ReplicaSets.
#[allow(clippy::too_many_arguments)]
fn scale(
    c: &Cluster,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    method: &Method,
    q: &HashMap<String, String>,
    ct: &str,
    body: &Bytes,
) -> ApiResult<Response> {
    let cur = c.get(rt, ns, name)?.full();
    let mut sc = scale_json(&cur);
    match method.as_str() {
        "GET" => return Ok(json_value(200, &sc)),
        "PUT" => sc = decode_body(body, ct)?,
        "PATCH" => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            match ct.split(';').next().unwrap_or("").trim() {
                "application/json-patch+json" => crate::patch::json_patch(&mut sc, &p)
                    .map_err(|e| ApiError::new(422, "Invalid", e))?,
                "application/strategic-merge-patch+json" => {
                    crate::patch::strategic_merge(&mut sc, &p)
                }
                _ => crate::patch::merge_patch(&mut sc, &p),
            }
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not allowed on scale"
            )));
        }
    }
    let replicas = sc
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("Scale", name, "spec.replicas: Required value"))?;
    let wo = WriteOpts {
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        manager: q
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "kubectl".into()),
        force: false,
        seed: false,
    };
    let patch = json!({"spec": {"replicas": replicas}}).to_string();
    let (v, _) = c.patch(rt, ns, name, PatchType::Merge, patch.as_bytes(), &wo, None)?;
    Ok(json_value(200, &scale_json(&v)))
}

/// `fieldValidation=Strict`: unknown top-level and metadata fields of built-in
/// kinds are errors (there is no full schema; nested fields are not checked).
fn strict_check(rt: &ResourceType, q: &HashMap<String, String>, body: &Value) -> ApiResult<()> {
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

fn obj_response(code: u16, json: &Bytes) -> Response {
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        Body::from(json.clone()),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn decode_body(body: &Bytes, ct: &str) -> ApiResult<Value> {
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

fn delete_opts(q: &HashMap<String, String>, body: &Bytes) -> ApiResult<DeleteOpts> {
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
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All")
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

fn selectors(q: &HashMap<String, String>) -> ApiResult<(LabelSelector, FieldSelector)> {
    let ls = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let fs = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    Ok((ls, fs))
}

fn list(
    c: &Cluster,
    rt: &ResourceType,
    ns: Option<&str>,
    q: &HashMap<String, String>,
    as_table: bool,
) -> ApiResult<Response> {
    let (ls, fs) = selectors(q)?;
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let after = match q.get("continue").filter(|s| !s.is_empty()) {
        Some(tok) => {
            let s = unhex(tok).ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let (n, m) = s
                .split_once('\0')
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            Some((n.to_string(), m.to_string()))
        }
        None => None,
    };
    let ns = if rt.namespaced { ns } else { None };
    let filter = |o: &crate::store::Obj| {
        (ls.is_empty() || ls.matches_obj(&o.value)) && (fs.is_empty() || fs.matches(&o.value))
    };
    let (items, next, rv) = c.store.list(&rt.key(), ns, after, limit, &filter);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some((n, m)) = &next {
        meta["continue"] = json!(hex(&format!("{n}\0{m}")));
    }
    if as_table {
        let cont = meta
            .get("continue")
            .and_then(Value::as_str)
            .map(String::from);
        let full: Vec<Value> = items.iter().map(|o| o.full()).collect();
        let t = table::table(rt, full.iter(), &rv.to_string(), cont.as_deref());
        return Ok(json_value(200, &t));
    }
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
    Ok(json_response(200, out))
}

fn watch(
    app: &App,
    rt: Arc<ResourceType>,
    ns: Option<String>,
    q: &HashMap<String, String>,
) -> ApiResult<Response> {
    let c = app.cluster.clone();
    let (ls, fs) = selectors(q)?;
    let ns = if rt.namespaced { ns } else { None };
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let since = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => Since::Now,
        _ if send_initial => Since::Now,
        Some(rv) => Since::Rv(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let key = rt.key();
    let from_rv = matches!(since, Since::Rv(_));
    let (replay, mut rx, start_rv) = match c.store.watch_from(&key, ns.as_deref(), since) {
        Ok(x) => x,
        Err(()) => {
            let rv = q.get("resourceVersion").cloned().unwrap_or_default();
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                c.store.current_rv()
            )));
        }
    };
    let drop_after = c
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .cfg
        .drop_watches_after_events;
    let (tx, body_rx) = ::tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    let mut shutdown = app.shutdown.clone();
    let kind = rt.kind.clone();
    let api_version = rt.api_version();
    ::tokio::spawn(async move {
        let selective = !ls.is_empty() || !fs.is_empty();
        let sel_match = |o: &crate::store::Obj| {
            (ls.is_empty() || ls.matches_obj(&o.value)) && (fs.is_empty() || fs.matches(&o.value))
        };
        // Objects the client currently sees through its selector: leaving the
        // selector is a DELETED event, entering it an ADDED one.
        let mut seen: std::collections::HashSet<(String, String)> =
            std::collections::HashSet::new();
        if selective && from_rv {
            let (items, _, _) = c
                .store
                .list(&key, ns.as_deref(), None, 0, &|o| sel_match(o));
            seen.extend(
                items
                    .iter()
                    .map(|o| (o.namespace().to_string(), o.name().to_string())),
            );
        }
        let mut translate = |e: &crate::store::Event| -> Option<Bytes> {
            if &*e.key != key.as_str() || ns.as_deref().is_some_and(|n| e.obj.namespace() != n) {
                return None;
            }
            if !selective {
                return Some(e.line());
            }
            let k = (e.obj.namespace().to_string(), e.obj.name().to_string());
            let m = sel_match(&e.obj);
            let was = seen.contains(&k);
            match (e.ty, m, was) {
                (crate::store::EventType::Deleted, _, _) => {
                    seen.remove(&k);
                    (m || was).then(|| e.line())
                }
                (_, true, true) => Some(e.line()),
                (_, true, false) => {
                    seen.insert(k);
                    Some(e.line_as(crate::store::EventType::Added))
                }
                (_, false, true) => {
                    seen.remove(&k);
                    Some(e.line_as(crate::store::EventType::Deleted))
                }
                (_, false, false) => None,
            }
        };
        let mut sent: u32 = 0;
        let mut last_rv = start_rv;
        let bookmark = |rv: u64, initial_end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let v = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}});
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let over = |sent: u32| drop_after.is_some_and(|n| sent >= n);
        for e in replay.iter() {
            let Some(line) = translate(e) else { continue };
            if over(sent) || tx.send(Ok(line)).await.is_err() {
                return;
            }
            sent += 1;
        }
        if send_initial && tx.send(Ok(bookmark(start_rv, true))).await.is_err() {
            return;
        }
        let deadline = ::tokio::time::sleep(timeout);
        ::tokio::pin!(deadline);
        let mut tick = ::tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            if over(sent) {
                return;
            }
            ::tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(Ok(bookmark(last_rv, false))).await.is_err() { return; }
                }
                _ = tx.closed() => return,
                ev = rx.recv() => match ev {
                    Ok(e) => {
                        last_rv = last_rv.max(e.rv);
                        if let Some(line) = translate(&e) {
                            if tx.send(Ok(line)).await.is_err() { return; }
                            sent += 1;
                        }
                    }
                    Err(_) => return,
                }
            }
        }
    });
    let stream =
        futures::stream::unfold(
            body_rx,
            |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
        );
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse_path("/api/v1/namespaces/default/pods/x")
            .unwrap()
            .unwrap();
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(p.resource, "pods");
        assert_eq!(p.name.as_deref(), Some("x"));
        let p = parse_path("/api/v1/namespaces/foo").unwrap().unwrap();
        assert_eq!(
            (p.resource.as_str(), p.name.as_deref()),
            ("namespaces", Some("foo"))
        );
        let p = parse_path("/api/v1/namespaces/foo/status")
            .unwrap()
            .unwrap();
        assert_eq!(p.sub.as_deref(), Some("status"));
        let p = parse_path("/apis/apps/v1/namespaces/a/deployments/d/status")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.group.as_str(), p.sub.as_deref()),
            ("apps", Some("status"))
        );
        assert!(parse_path("/apis/apps/v1").unwrap().is_err());
        assert!(parse_path("/version").is_none());
    }

    #[test]
    fn query() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Cenv+in+%28a%29&limit=5"));
        assert_eq!(q["labelSelector"], "app=web,env in (a)");
        assert_eq!(q["limit"], "5");
        assert_eq!(unhex(&hex("a\0b")).unwrap(), "a\0b");
    }
}
