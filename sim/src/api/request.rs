//! A request parsed once, and the resource it addresses.

use super::path::ResPath;
use super::query::{dry_run, parse_query};
use crate::cluster::WriteOpts;
use crate::registry::ResourceType;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri, header};
use std::collections::HashMap;
use std::sync::Arc;

/// One HTTP request as the handlers need it.
pub(super) struct Request {
    pub method: Method,
    /// The path as received (trailing slash included).
    pub path: String,
    /// The raw query string, for the request log.
    pub raw_query: String,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub accept: String,
    pub user_agent: String,
    pub body: Bytes,
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

impl Request {
    pub(super) fn new(method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Self {
        Request {
            method,
            path: uri.path().to_string(),
            raw_query: uri.query().unwrap_or("").to_string(),
            query: parse_query(uri.query()),
            content_type: header_str(headers, header::CONTENT_TYPE),
            accept: header_str(headers, header::ACCEPT),
            user_agent: header_str(headers, header::USER_AGENT),
            body,
        }
    }

    pub(super) fn dry_run(&self) -> bool {
        dry_run(&self.query)
    }
}

/// A request for the objects of one resource type (or one object, or one
/// object's subresource).
pub(super) struct ResourceRequest<'a> {
    pub req: &'a Request,
    pub rt: Arc<ResourceType>,
    pub path: ResPath,
}

impl ResourceRequest<'_> {
    /// The namespace in the path; empty for cluster-scoped or all-namespace requests.
    pub(super) fn ns(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or("")
    }

    pub(super) fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    pub(super) fn sub(&self) -> Option<&str> {
        self.path.sub.as_deref()
    }

    pub(super) fn query(&self) -> &HashMap<String, String> {
        &self.req.query
    }

    /// The field manager is `fieldManager`, else the client's name from its
    /// User-Agent (as the API server derives it).
    pub(super) fn write_opts(&self) -> WriteOpts {
        let q = self.query();
        let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
            let m = self.req.user_agent.split('/').next().unwrap_or("");
            if m.is_empty() {
                "unknown".into()
            } else {
                m.to_string()
            }
        });
        WriteOpts {
            dry_run: self.req.dry_run(),
            manager,
            force: q.get("force").is_some_and(|v| v == "true"),
            seed: false,
        }
    }
}
