//! HTTP front: faults and the request log around every request, then
//! routing — non-resource paths, subresources, and one handler per verb.

mod body;
mod control;
mod listener;
mod nonresource;
mod path;
mod query;
mod request;
mod response;
mod subresources;
mod verbs;
mod watch;

pub use listener::SimListener;
pub use nonresource::version_json;
pub use path::{ResPath, parse_path};
pub use query::parse_query;

use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::faults::{Decision, RequestRecord};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use path::Verb;
use request::{Request, ResourceRequest};
use response::not_found;
use std::sync::Arc;
use std::time::Instant;

pub struct AppState {
    pub cluster: Arc<Cluster>,
    pub addr: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub type App = Arc<AppState>;

pub fn router(state: App) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state)
}

async fn handle(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().starts_with("/sim/") {
        return control::serve(&app, &method, uri.path(), uri.query(), &body);
    }
    let started = Instant::now();
    let req = Request::new(method, &uri, &headers, body);
    let decision = fault_decision(&app, &req).await;
    let refusing = app
        .cluster
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .refusing();
    let mut resp = match decision {
        Decision::Pass => dispatch(&app, &req).unwrap_or_else(IntoResponse::into_response),
        Decision::Fail(code) => injected_error(code, &req).into_response(),
        Decision::Throttle(secs) => ApiError::too_many(secs).into_response(),
    };
    // during an outage, no connection is kept for the next request
    if refusing {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    log_request(&app, &req, &resp, started);
    resp
}

/// Waits out any injected latency, then asks the faults whether this
/// request passes.
async fn fault_decision(app: &App, req: &Request) -> Decision {
    let (latency, decision) = {
        let mut f = app.cluster.faults.lock().unwrap_or_else(|e| e.into_inner());
        let m = req.method.as_str();
        (f.latency(m, &req.path), f.decide(m, &req.path))
    };
    if !latency.is_zero() {
        ::tokio::time::sleep(latency).await;
    }
    decision
}

/// The error an injected failure answers with.
fn injected_error(code: u16, req: &Request) -> ApiError {
    match code {
        409 => {
            let (g, r, n) = parse_path(&req.path)
                .and_then(Result::ok)
                .map(|rp| (rp.group, rp.resource, rp.name.unwrap_or_default()))
                .unwrap_or_default();
            ApiError::conflict(
                &g,
                &r,
                &n,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        }
        500 => ApiError::internal("simulated internal error (fault injection)"),
        503 => ApiError::unavailable(
            "simulated outage: the server is currently unable to handle the request",
        ),
        code => ApiError::new(
            code,
            "InternalError",
            format!("simulated error {code} (fault injection)"),
        ),
    }
}

/// Appends the request to the log `/sim/v1/requests` serves.
fn log_request(app: &App, req: &Request, resp: &Response, started: Instant) {
    let rp = parse_path(&req.path).and_then(Result::ok);
    let verb = rp
        .as_ref()
        .and_then(|rp| Verb::of(&req.method, rp, &req.query, &req.content_type));
    // access reviews are created without being stored: not a cluster change
    let virtual_create = rp.as_ref().is_some_and(|rp| {
        rp.resource.ends_with("accessreviews") || rp.resource.ends_with("selfsubjectrulesreviews")
    });
    let dry_run = req.dry_run();
    let rec = RequestRecord {
        time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.raw_query.clone(),
        verb: verb.map(Verb::as_str).unwrap_or("").to_string(),
        status: resp.status().as_u16(),
        mutating: verb.is_some_and(Verb::mutating) && !dry_run && !virtual_create,
        dry_run,
        user_agent: req.user_agent.clone(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    app.cluster
        .log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(rec);
}

/// Routes a request that passed the faults.
fn dispatch(app: &App, req: &Request) -> ApiResult<Response> {
    let p = req.path.trim_end_matches('/');
    if let Some(resp) = nonresource::serve(app, p) {
        return resp;
    }
    let rp = match parse_path(p) {
        None => return Err(not_found()),
        Some(Err((g, v))) => return nonresource::resource_list(app, &g, &v),
        Some(Ok(rp)) => rp,
    };
    let rt = app
        .cluster
        .registry
        .lookup(&rp.group, &rp.version, &rp.resource)
        .ok_or_else(not_found)?;
    let r = ResourceRequest { req, rt, path: rp };
    check_scope(&r)?;
    authorize(app, &r)?;
    if subresources::is_pod_log(&r) {
        return subresources::pod_log(&app.cluster, &r);
    }
    if subresources::is_scale(&r) {
        return subresources::scale(&app.cluster, &r);
    }
    if let Some(sub) = r.sub()
        && (sub != "status" || !r.rt.status)
    {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({sub})"),
        ));
    }
    serve_verb(app, &r)
}

/// The fault configuration's `denied` set is what the caller may not do: access reviews
/// answer it, and the requests themselves are refused with the API server's 403 (access
/// reviews are always allowed, as `system:basic-user` allows them). A server-side apply is
/// authorized as `patch`, as Kubernetes does.
fn authorize(app: &App, r: &ResourceRequest) -> ApiResult<()> {
    if r.rt.virtual_create {
        return Ok(());
    }
    let Some(verb) = Verb::of(&r.req.method, &r.path, &r.req.query, &r.req.content_type) else {
        return Ok(());
    };
    let verb = match verb {
        Verb::Apply => "patch",
        v => v.as_str(),
    };
    let ns = r.path.namespace.as_deref().unwrap_or("");
    let denied = app
        .cluster
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_denied(verb, &r.rt.plural, &r.rt.group, ns);
    if !denied {
        return Ok(());
    }
    let what = match &r.path.name {
        Some(n) => format!("{} \"{n}\"", r.rt.plural),
        None => r.rt.plural.clone(),
    };
    let scope = if ns.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{ns}\"")
    };
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "{what} is forbidden: User \"meshup-sim\" cannot {verb} resource \"{}\" in API group \"{}\" {scope} (denied by the simulator's fault configuration)",
            r.rt.plural, r.rt.group
        ),
    ))
}

/// A namespaced type is addressed with a namespace (listing across all
/// namespaces and deleting collections aside); a cluster-scoped one without.
fn check_scope(r: &ResourceRequest) -> ApiResult<()> {
    let (rt, rp, method) = (&r.rt, &r.path, &r.req.method);
    if rt.namespaced == rp.namespace.is_some()
        || (rt.namespaced && rp.name.is_none() && method == Method::GET)
    {
        return Ok(());
    }
    if rt.namespaced && method != Method::GET && rp.name.is_none() && method != Method::DELETE {
        return Err(ApiError::bad_request(
            "a namespace is required for this resource",
        ));
    }
    if !rt.namespaced {
        return Err(not_found());
    }
    Ok(())
}

fn serve_verb(app: &App, r: &ResourceRequest) -> ApiResult<Response> {
    let req = r.req;
    let verb = Verb::of(&req.method, &r.path, &req.query, &req.content_type);
    if r.rt.virtual_create && verb != Some(Verb::Create) {
        let name = verb.map(Verb::as_str).unwrap_or("");
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({name})"
        )));
    }
    if let Some(dr) = req.query.get("dryRun")
        && dr != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {dr:?}: supported values: \"All\""
        )));
    }
    let c = &app.cluster;
    match verb {
        Some(Verb::Get) => verbs::get(c, r),
        Some(Verb::List) => verbs::list(c, r),
        Some(Verb::Watch) => watch::watch(app, r),
        Some(Verb::Create) => verbs::create(c, r),
        Some(Verb::Update) => verbs::update(c, r),
        Some(Verb::Patch | Verb::Apply) => verbs::patch(c, r),
        Some(Verb::Delete) => verbs::delete(c, r),
        Some(Verb::DeleteCollection) => verbs::delete_collection(c, r),
        None => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            req.method
        ))),
    }
}
