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

/// A configured grant the policy cannot have: a mistake in the policy configuration
/// (`grants:` of one entry), which the caller places (file, entry) and reports as exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A Secret grant without names: Secrets are granted only by name.
    #[error("grant {grant}: Secrets are granted only by name; add `names: [...]`")]
    SecretWithoutNames {
        /// The grant, described (`v1 Secret in istio-system`).
        grant: String,
    },
    /// A grant wider than (or beside) every read the policy declares.
    #[error(
        "grant {grant} is not among the reads the policy declares ({}); remove or narrow it",
        declared_reads(declared)
    )]
    NotDeclared {
        /// The grant, described.
        grant: String,
        /// The reads the policy declares, described.
        declared: Vec<String>,
    },
}

fn declared_reads(declared: &[String]) -> String {
    if declared.is_empty() {
        "nothing".to_string()
    } else {
        declared.join("; ")
    }
}

/// Check configured grants against the declared reads; the error says what to fix.
pub fn validate(grants: &[Grant], declared: &[Grant]) -> Result<(), Error> {
    for g in grants {
        if g.is_secret() && g.names.is_empty() {
            return Err(Error::SecretWithoutNames {
                grant: g.describe(),
            });
        }
        if !declared.iter().any(|d| g.within(d)) {
            return Err(Error::NotDeclared {
                grant: g.describe(),
                declared: declared.iter().map(Grant::describe).collect(),
            });
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

/// A read refused by the grants. Its text is what the policy gets back as the read's error
/// (the sandbox turns it into the WIT `string` error) and what the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The policy has no grant of this kind at all.
    #[error(
        "read of {what} refused: not granted to policy {policy}{}",
        if *secret { " (Secrets are granted only by name)" } else { "" }
    )]
    NotGranted {
        /// The read, described (`v1 ConfigMap in istio-system named x`).
        what: String,
        policy: String,
        /// A Secret was asked for (granted only by name).
        secret: bool,
    },
    /// Grants of this kind exist, but none covers this namespace or name.
    #[error("read of {what} refused: outside the grants of policy {policy}")]
    OutsideGrants { what: String, policy: String },
}

/// The decision on a read: `Ok(names filter)` (empty = all) or why it is refused.
pub fn check<'g>(grants: &'g [Grant], policy: &str, req: &Request) -> Result<&'g [String], Denied> {
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
        return Err(Denied::NotGranted {
            what,
            policy: policy.to_string(),
            secret: req.kind == "Secret",
        });
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
    Err(Denied::OutsideGrants {
        what,
        policy: policy.to_string(),
    })
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
        assert_eq!(
            e.to_string(),
            "grant v1 Secret in istio-system: Secrets are granted only by name; add `names: [...]`"
        );
        let e = validate(&[g("v1", "Pod", &[], &[])], &declared).unwrap_err();
        assert_eq!(
            e.to_string(),
            "grant v1 Pod is not among the reads the policy declares (v1 ConfigMap; v1 Secret in istio-system); remove or narrow it"
        );
        let e = validate(&[g("v1", "Pod", &[], &[])], &[]).unwrap_err();
        assert!(e.to_string().contains("declares (nothing)"), "{e}");
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
        assert_eq!(
            e.to_string(),
            "read of v1 Secret in istio-system named cacerts refused: not granted to policy p (Secrets are granted only by name)"
        );
        let e = check(
            &grants,
            "p",
            &req("v1", "ConfigMap", Some("istio-system"), Some("other")),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "read of v1 ConfigMap in istio-system named other refused: outside the grants of policy p"
        );
    }
}
