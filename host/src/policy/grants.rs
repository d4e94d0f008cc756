//! Grants: which cluster reads a policy's host calls are answered for. Grants come
//! from the policy configuration (or, by default, the reads the policy declares)
//! and must be a subset of what the policy declares. Secrets only by name.

use serde::{Deserialize, Serialize};

/// One granted (or declared) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Grant {
    pub api_version: String,
    pub kind: String,
    /// Empty: all namespaces (and cluster-scoped objects).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Empty: all names.
    #[serde(default)]
    pub names: Vec<String>,
}

impl Grant {
    fn is_secret(&self) -> bool {
        self.kind == "Secret" && (self.api_version == "v1" || self.api_version.is_empty())
    }

    /// `v1 Secret in [istio-system] named [cacerts]`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.api_version, self.kind);
        if !self.namespaces.is_empty() {
            s.push_str(&format!(" in {}", self.namespaces.join(",")));
        }
        if !self.names.is_empty() {
            s.push_str(&format!(" named {}", self.names.join(",")));
        }
        s
    }

    /// Whether `self` (a grant) is covered by `declared`.
    fn within(&self, declared: &Grant) -> bool {
        let covers = |d: &[String], g: &[String]| {
            d.is_empty() || (!g.is_empty() && g.iter().all(|x| d.contains(x)))
        };
        self.api_version == declared.api_version
            && self.kind == declared.kind
            && covers(&declared.namespaces, &self.namespaces)
            && covers(&declared.names, &self.names)
    }
}

/// The grants a policy gets when the configuration names none: what it declares,
/// except Secrets declared without names (never granted implicitly).
pub fn default_grants(declared: &[Grant]) -> Vec<Grant> {
    declared
        .iter()
        .filter(|g| !(g.is_secret() && g.names.is_empty()))
        .cloned()
        .collect()
}

/// Check configured grants against the declared reads; the error says what to fix.
pub fn validate(grants: &[Grant], declared: &[Grant]) -> Result<(), String> {
    for g in grants {
        if g.is_secret() && g.names.is_empty() {
            return Err(format!(
                "grant {}: Secrets are granted only by name; add `names: [...]`",
                g.describe()
            ));
        }
        if !declared.iter().any(|d| g.within(d)) {
            let decl = if declared.is_empty() {
                "nothing".to_string()
            } else {
                declared
                    .iter()
                    .map(Grant::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            return Err(format!(
                "grant {} is not among the reads the policy declares ({decl}); remove or narrow it",
                g.describe()
            ));
        }
    }
    Ok(())
}

/// What a read asks for.
pub struct Request<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    /// `Some` for `get`, `None` for `list`.
    pub name: Option<&'a str>,
}

/// The decision on a read: `Ok(names filter)` (empty = all) or `Err(reason)`.
pub fn check<'g>(grants: &'g [Grant], policy: &str, req: &Request) -> Result<&'g [String], String> {
    let what = format!(
        "{} {}{}{}",
        req.api_version,
        req.kind,
        req.namespace
            .map(|n| format!(" in {n}"))
            .unwrap_or_else(|| " in all namespaces".into()),
        req.name.map(|n| format!(" named {n}")).unwrap_or_default()
    );
    let same_kind: Vec<&Grant> = grants
        .iter()
        .filter(|g| g.api_version == req.api_version && g.kind == req.kind)
        .collect();
    if same_kind.is_empty() {
        let hint = if req.kind == "Secret" {
            " (Secrets are granted only by name)"
        } else {
            ""
        };
        return Err(format!(
            "read of {what} refused: not granted to policy {policy}{hint}"
        ));
    }
    for g in same_kind {
        let ns_ok = g.namespaces.is_empty()
            || req
                .namespace
                .is_some_and(|n| g.namespaces.iter().any(|x| x == n));
        let name_ok = g.names.is_empty() || req.name.is_none_or(|n| g.names.iter().any(|x| x == n));
        if ns_ok && name_ok {
            return Ok(&g.names);
        }
    }
    Err(format!(
        "read of {what} refused: outside the grants of policy {policy}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(api: &str, kind: &str, ns: &[&str], names: &[&str]) -> Grant {
        Grant {
            api_version: api.into(),
            kind: kind.into(),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn subset_rules() {
        let declared = [
            g("v1", "ConfigMap", &[], &[]),
            g("v1", "Secret", &["istio-system"], &[]),
        ];
        assert!(validate(&[g("v1", "ConfigMap", &["a"], &["x"])], &declared).is_ok());
        assert!(
            validate(
                &[g("v1", "Secret", &["istio-system"], &["cacerts"])],
                &declared
            )
            .is_ok()
        );
        let e = validate(&[g("v1", "Secret", &["istio-system"], &[])], &declared).unwrap_err();
        assert!(e.contains("only by name"), "{e}");
        let e = validate(&[g("v1", "Pod", &[], &[])], &declared).unwrap_err();
        assert!(e.contains("not among the reads"), "{e}");
        assert!(
            validate(&[g("v1", "Secret", &[], &["cacerts"])], &declared).is_err(),
            "all namespaces is wider"
        );
        assert_eq!(default_grants(&declared).len(), 1);
    }

    #[test]
    fn requests() {
        let grants = [
            g("v1", "ConfigMap", &["istio-system"], &["mesh-freeze"]),
            g("apps/v1", "Deployment", &[], &[]),
        ];
        let req = |api, kind, ns, name| Request {
            api_version: api,
            kind,
            namespace: ns,
            name,
        };
        assert!(check(&grants, "p", &req("apps/v1", "Deployment", None, None)).is_ok());
        assert!(
            check(
                &grants,
                "p",
                &req("v1", "ConfigMap", Some("istio-system"), Some("mesh-freeze"))
            )
            .is_ok()
        );
        assert!(
            check(
                &grants,
                "p",
                &req("v1", "ConfigMap", Some("istio-system"), Some("other"))
            )
            .is_err()
        );
        assert!(check(&grants, "p", &req("v1", "ConfigMap", None, None)).is_err());
        assert_eq!(
            check(
                &grants,
                "p",
                &req("v1", "ConfigMap", Some("istio-system"), None)
            )
            .unwrap(),
            ["mesh-freeze"]
        );
        let e = check(
            &grants,
            "p",
            &req("v1", "Secret", Some("istio-system"), Some("cacerts")),
        )
        .unwrap_err();
        assert!(
            e.contains("not granted to policy p") && e.contains("only by name"),
            "{e}"
        );
    }
}
