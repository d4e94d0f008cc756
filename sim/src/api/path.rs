//! Resource paths and the verb a request means.

use axum::http::Method;
use std::collections::HashMap;

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

/// The Kubernetes verb of a resource request (as audit logs name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    /// A server-side apply patch.
    Apply,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub(super) fn of(
        method: &Method,
        rp: &ResPath,
        q: &HashMap<String, String>,
        content_type: &str,
    ) -> Option<Verb> {
        let watch = q.get("watch").is_some_and(|v| v == "true" || v == "1");
        Some(match (method.as_str(), rp.name.is_some()) {
            ("GET", true) => Verb::Get,
            ("GET", false) if watch => Verb::Watch,
            ("GET", false) => Verb::List,
            ("POST", _) => Verb::Create,
            ("PUT", _) => Verb::Update,
            ("PATCH", _) if content_type.starts_with("application/apply-patch") => Verb::Apply,
            ("PATCH", _) => Verb::Patch,
            ("DELETE", true) => Verb::Delete,
            ("DELETE", false) => Verb::DeleteCollection,
            _ => return None,
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Apply => "apply",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    pub(super) fn mutating(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
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
    fn verbs() {
        let rp = |name: Option<&str>| ResPath {
            group: "apps".into(),
            version: "v1".into(),
            namespace: Some("a".into()),
            resource: "deployments".into(),
            name: name.map(String::from),
            sub: None,
        };
        let none = HashMap::new();
        let watch = HashMap::from([("watch".to_string(), "1".to_string())]);
        let verb = |m: Method, name, q, ct| Verb::of(&m, &rp(name), q, ct);
        assert_eq!(verb(Method::GET, Some("d"), &none, ""), Some(Verb::Get));
        assert_eq!(verb(Method::GET, None, &watch, ""), Some(Verb::Watch));
        assert_eq!(verb(Method::GET, None, &none, ""), Some(Verb::List));
        let apply = "application/apply-patch+yaml";
        assert_eq!(
            verb(Method::PATCH, Some("d"), &none, apply),
            Some(Verb::Apply)
        );
        assert_eq!(
            verb(Method::DELETE, None, &none, ""),
            Some(Verb::DeleteCollection)
        );
        assert_eq!(verb(Method::OPTIONS, None, &none, ""), None);
        assert!(Verb::Apply.mutating() && !Verb::Watch.mutating());
    }
}
