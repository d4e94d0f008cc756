//! Fault injection and the request log.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Matches requests by HTTP method (empty = any) and path substring (empty = any).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Matcher {
    pub method: String,
    pub path: String,
}

impl Matcher {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.method.is_empty() || self.method.eq_ignore_ascii_case(method))
            && (self.path.is_empty() || path.contains(&self.path))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBurst {
    #[serde(flatten)]
    pub matcher: Matcher,
    /// How many matching requests still fail.
    pub count: u32,
    /// 500 or 503 (any 4xx/5xx is accepted).
    #[serde(default = "default_500")]
    pub status: u16,
}

fn default_500() -> u16 {
    500
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Throttle {
    #[serde(flatten)]
    pub matcher: Matcher,
    pub count: u32,
    #[serde(default = "default_retry")]
    pub retry_after_seconds: u64,
}

fn default_retry() -> u64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    #[serde(flatten)]
    pub matcher: Matcher,
    pub ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Conflicts {
    /// Path substring (empty = any update/patch).
    #[serde(default)]
    pub path: String,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outage {
    /// Seconds from when the fault was set until the outage starts.
    #[serde(default)]
    pub start_after_seconds: f64,
    /// Length of the outage.
    pub duration_seconds: f64,
    /// Status for API requests during the outage (503 default).
    #[serde(default = "default_503")]
    pub status: u16,
    /// Refuse connections instead: new API connections are closed before a
    /// response (requests on already open connections get `status` and
    /// `Connection: close`). `/sim/` requests still pass.
    #[serde(default)]
    pub refuse: bool,
}

fn default_503() -> u16 {
    503
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Denied {
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The fault configuration (`--faults FILE` YAML, `GET/PUT /sim/v1/faults` JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultConfig {
    /// Next N requests matching → 500/503.
    pub errors: Vec<ErrorBurst>,
    /// Next N requests matching → 429 with Retry-After.
    pub throttle: Vec<Throttle>,
    /// Added latency for matching requests.
    pub latency: Vec<Latency>,
    /// Watches are closed after sending this many events.
    pub drop_watches_after_events: Option<u32>,
    /// Next N updates/patches (PUT/PATCH) → 409 Conflict.
    pub conflicts: Vec<Conflicts>,
    pub outage: Option<Outage>,
    /// Workloads (Deployment/DaemonSet/ReplicaSet/Pod names) whose pods never become Ready.
    pub never_ready: Vec<String>,
    /// What the caller may not do: SelfSubjectAccessReview answers `allowed: false` for
    /// these, and the requests themselves are refused (403 Forbidden).
    pub denied: Vec<Denied>,
    /// Reported by `/version` (e.g. "v1.30.4"); unchanged when absent.
    pub kubernetes_version: Option<String>,
}

pub struct Faults {
    pub cfg: FaultConfig,
    pub set_at: Instant,
}

pub enum Decision {
    Pass,
    Fail(u16),
    Throttle(u64),
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Self {
        Faults {
            cfg,
            set_at: Instant::now(),
        }
    }

    pub fn outage_active(&self) -> Option<u16> {
        let o = self.cfg.outage.as_ref()?;
        let el = self.set_at.elapsed().as_secs_f64();
        (el >= o.start_after_seconds && el < o.start_after_seconds + o.duration_seconds)
            .then_some(o.status)
    }

    pub fn refusing(&self) -> bool {
        self.outage_active().is_some() && self.cfg.outage.as_ref().is_some_and(|o| o.refuse)
    }

    pub fn latency(&self, method: &str, path: &str) -> Duration {
        Duration::from_millis(
            self.cfg
                .latency
                .iter()
                .filter(|l| l.matcher.matches(method, path))
                .map(|l| l.ms)
                .sum(),
        )
    }

    /// Consumes one matching error/throttle/conflict budget.
    pub fn decide(&mut self, method: &str, path: &str) -> Decision {
        if let Some(s) = self.outage_active() {
            return Decision::Fail(s);
        }
        for e in self.cfg.errors.iter_mut() {
            if e.count > 0 && e.matcher.matches(method, path) {
                e.count -= 1;
                return Decision::Fail(e.status);
            }
        }
        for t in self.cfg.throttle.iter_mut() {
            if t.count > 0 && t.matcher.matches(method, path) {
                t.count -= 1;
                return Decision::Throttle(t.retry_after_seconds);
            }
        }
        if method == "PUT" || method == "PATCH" {
            for c in self.cfg.conflicts.iter_mut() {
                if c.count > 0 && (c.path.is_empty() || path.contains(&c.path)) {
                    c.count -= 1;
                    return Decision::Fail(409);
                }
            }
        }
        self.cfg.errors.retain(|e| e.count > 0);
        self.cfg.throttle.retain(|e| e.count > 0);
        self.cfg.conflicts.retain(|e| e.count > 0);
        Decision::Pass
    }

    pub fn is_never_ready(&self, names: &[&str]) -> bool {
        self.cfg
            .never_ready
            .iter()
            .any(|n| names.iter().any(|x| x == n))
    }

    /// Whether `verb` on `resource` is denied; in `namespace`, or (`""`) cluster-wide,
    /// which a denial in any one namespace takes away.
    pub fn is_denied(&self, verb: &str, resource: &str, group: &str, namespace: &str) -> bool {
        self.cfg.denied.iter().any(|d| {
            (d.verb == "*" || d.verb == verb)
                && (d.resource == "*" || d.resource == resource)
                && d.group.as_deref().is_none_or(|g| g == "*" || g == group)
                && d.namespace
                    .as_deref()
                    .is_none_or(|n| namespace.is_empty() || n == namespace)
        })
    }
}

/// One API request as seen by the simulator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Kubernetes verb: get, list, watch, create, update, patch, apply, delete,
    /// deletecollection; "" for non-resource paths (discovery, /version, ...).
    pub verb: String,
    pub status: u16,
    /// True for create/update/patch/apply/delete/deletecollection without dryRun.
    pub mutating: bool,
    pub dry_run: bool,
    pub user_agent: String,
    pub duration_ms: f64,
}

pub struct RequestLog {
    pub entries: VecDeque<RequestRecord>,
    pub cap: usize,
}

impl RequestLog {
    pub fn push(&mut self, r: RequestRecord) {
        if self.entries.len() >= self.cap {
            self.entries.pop_front();
        }
        self.entries.push_back(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_consumed() {
        let cfg: FaultConfig = serde_yaml::from_str(
            "errors:\n- {method: GET, path: /apis/apps, count: 2, status: 503}\nthrottle:\n- {path: /api/v1/pods, count: 1, retry_after_seconds: 3}\nconflicts:\n- {count: 1}\n",
        )
        .unwrap();
        let mut f = Faults::new(cfg);
        assert!(matches!(
            f.decide("GET", "/apis/apps/v1/deployments"),
            Decision::Fail(503)
        ));
        assert!(matches!(
            f.decide("POST", "/apis/apps/v1/deployments"),
            Decision::Pass
        ));
        assert!(matches!(
            f.decide("GET", "/apis/apps/v1/x"),
            Decision::Fail(503)
        ));
        assert!(matches!(f.decide("GET", "/apis/apps/v1/x"), Decision::Pass));
        assert!(matches!(
            f.decide("GET", "/api/v1/pods"),
            Decision::Throttle(3)
        ));
        assert!(matches!(f.decide("GET", "/api/v1/pods"), Decision::Pass));
        assert!(matches!(
            f.decide("PATCH", "/api/v1/x"),
            Decision::Fail(409)
        ));
        assert!(matches!(f.decide("PATCH", "/api/v1/x"), Decision::Pass));
    }

    #[test]
    fn outage_window() {
        let mut f = Faults::new(FaultConfig {
            outage: Some(Outage {
                start_after_seconds: 0.0,
                duration_seconds: 60.0,
                status: 503,
                refuse: false,
            }),
            ..Default::default()
        });
        assert!(matches!(f.decide("GET", "/api"), Decision::Fail(503)));
        f.cfg.outage.as_mut().unwrap().start_after_seconds = 100.0;
        assert!(matches!(f.decide("GET", "/api"), Decision::Pass));
    }

    #[test]
    fn denied_and_never_ready() {
        let f = Faults::new(FaultConfig {
            denied: vec![Denied {
                verb: "delete".into(),
                resource: "pods".into(),
                group: None,
                namespace: None,
            }],
            never_ready: vec!["istiod".into()],
            ..Default::default()
        });
        assert!(f.is_denied("delete", "pods", "", "x"));
        assert!(!f.is_denied("get", "pods", "", "x"));
        assert!(f.is_never_ready(&["istiod-abc", "istiod"]));
        assert!(!f.is_never_ready(&["web"]));
    }
}
