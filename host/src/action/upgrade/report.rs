//! What `precheck`, `install` and `upgrade` return: the report (with its refusal, if the
//! checks blocked the run) and the one JSON document `-o json` prints.

use serde::Serialize;
use serde_json::Value;

use super::*;

/// The JSON document of `precheck`/`upgrade -o json`.
#[derive(Serialize)]
struct Doc<'a> {
    current_version: Option<&'a str>,
    target_version: &'a str,
    direction: Direction,
    blocked: bool,
    findings: Vec<crate::policy::Finding>,
    overridden: &'a [String],
    /// Builtin policies that policy files replace in this run.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    replaced_policies: &'a [String],
    plan: PlanSummary<'a>,
    /// The Helm releases of the install, in any namespace.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    helm_releases: &'a [crate::installed::helm::releases::Release],
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<RunResult>,
}

#[derive(Serialize)]
struct PlanSummary<'a> {
    bundle: &'a str,
    profile: &'a str,
    install_method: &'a str,
    create: usize,
    update: usize,
    unchanged: usize,
    prune: usize,
    /// Objects the current user may not read (or dry-run): what happens to them is unknown.
    #[serde(skip_serializing_if = "is_zero")]
    unknown: usize,
    changes: &'a [plan::Change],
    profile_default_changes: &'a [plan::ValueChange],
    reverted_values: &'a [plan::ValueChange],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    kept_values: &'a [plan::KeptValue],
}

#[derive(Serialize, Clone)]
pub struct RunResult {
    pub status: String,
    pub revision: Option<u32>,
    pub seconds: f64,
    pub message: String,
    pub components: Vec<apply::ComponentReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_plane: Option<Value>,
}

/// What an upgrade (or install, or precheck) found and did: the CLI prints it, as text or
/// as the JSON document.
pub struct Report {
    pub plan: Plan,
    pub installed: Installed,
    /// The precheck phase's findings (its `blocked` refuses the run).
    pub pre: Outcome,
    /// The post-upgrade phase's findings, once changes were made.
    pub post: Option<Outcome>,
    /// Builtin policies that policy files replace in this run.
    pub replaced: Vec<String>,
    /// What happened (`None`: a precheck, or a run refused by its checks).
    pub result: Option<RunResult>,
    /// The data plane after a successful run (whose proxies are now outdated).
    pub data_plane: Option<dataplane::Report>,
    pub code: Code,
}

impl Report {
    /// The exit error of a run refused by its prechecks.
    pub fn refusal(&self) -> Option<Exit> {
        if !self.pre.blocked {
            return None;
        }
        let mut codes: Vec<&str> = Vec::new();
        for f in self.pre.errors() {
            if !self.pre.overridden.contains(&f.code) && !codes.contains(&f.code.as_str()) {
                codes.push(&f.code);
            }
        }
        Some(Exit::new(
            Code::Blocked,
            format!(
                "blocked by {} check(s): {}; fix them, or override one with --ignore CODE (or all with --force), which is recorded",
                codes.len(),
                codes.join(", ")
            ),
        ))
    }

    /// The JSON document of `precheck`/`upgrade -o json`.
    pub fn doc(&self) -> impl Serialize + '_ {
        let mut findings = self.pre.findings.clone();
        findings.extend(self.post.iter().flat_map(|o| o.findings.iter().cloned()));
        Doc {
            current_version: self.plan.current_version.as_deref(),
            target_version: &self.plan.target_version,
            direction: self.plan.direction,
            blocked: self.pre.blocked,
            findings,
            overridden: &self.pre.overridden,
            replaced_policies: &self.replaced,
            plan: summary(&self.plan, &self.installed),
            helm_releases: &self.installed.helm.releases,
            result: self.result.clone(),
        }
    }
}

fn summary<'a>(plan: &'a Plan, installed: &'a Installed) -> PlanSummary<'a> {
    PlanSummary {
        bundle: &plan.bundle,
        profile: &plan.profile,
        install_method: installed.method.name(),
        create: plan.count(plan::Action::Create),
        update: plan.count(plan::Action::Update),
        unchanged: plan.count(plan::Action::Unchanged),
        prune: plan.count(plan::Action::Prune),
        unknown: plan.count(plan::Action::Unknown),
        changes: &plan.changes,
        profile_default_changes: &plan.profile_default_changes,
        reverted_values: &plan.reverted_values,
        kept_values: &plan.kept_values,
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
