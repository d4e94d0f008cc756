//! Running the checks of a phase: the policies (sandboxed, through `policy`), fed a
//! snapshot of exactly the cluster objects they are granted, plus the host's own
//! permission check; then `--force` / `--ignore CODE` decide what still blocks.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cluster::kube::Kube;
use crate::engine::plan::Plan;
use crate::installed::state::{InstallMethod, Installed};
use crate::policy::{self, Finding, Phase, PolicyContext, PolicySet, Severity, Snapshot};
use crate::release::source::Source;

/// What the user overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub force: bool,
    pub ignore: Vec<String>,
}

impl Overrides {
    /// How history records the overrides.
    pub fn describe(&self, used: &[String]) -> Vec<String> {
        let mut out: Vec<String> = used.iter().map(|c| format!("ignored {c}")).collect();
        if self.force {
            out.push("forced".into());
        }
        out
    }
}

/// The result of one phase's checks.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub phase: String,
    pub findings: Vec<Finding>,
    /// Error findings that block (not ignored, not forced).
    pub blocked: bool,
    /// Error codes that were overridden by `--ignore` or `--force`.
    pub overridden: Vec<String>,
}

impl Outcome {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

/// Loads the policy set once per run and evaluates phases against the cluster.
pub struct Checker {
    set: Arc<PolicySet>,
}

impl Checker {
    pub fn load(
        config: Option<&std::path::Path>,
        audit_log: Option<&std::path::Path>,
    ) -> anyhow::Result<Checker> {
        let opts = policy::RuntimeOptions {
            audit_log: audit_log.map(|p| p.to_path_buf()),
            ..Default::default()
        };
        Ok(Checker {
            set: Arc::new(PolicySet::load(config, opts)?),
        })
    }

    /// `builtin:NAME replaced by …` for each builtin a policy file replaces in this run.
    pub fn replacements(&self) -> Vec<String> {
        self.set.replacements()
    }

    /// Read what the phase's policies are granted, in one list per kind and namespace.
    pub async fn snapshot(&self, cluster: &dyn Kube, phase: Phase) -> anyhow::Result<Snapshot> {
        let mut objects = Vec::new();
        for (api_version, kind, namespaces) in self.set.reads(phase) {
            let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
                vec![None]
            } else {
                namespaces.iter().map(|n| Some(n.as_str())).collect()
            };
            for ns in scopes {
                // A kind the cluster does not serve simply has no objects.
                objects.extend(
                    cluster
                        .list_if_served(&api_version, &kind, ns, None)
                        .await?,
                );
            }
        }
        Ok(Snapshot::from_objects(objects))
    }

    /// Evaluate one phase and apply the overrides.
    pub async fn run(
        &self,
        cluster: &dyn Kube,
        phase: Phase,
        ctx: &PolicyContext,
        extra: Vec<Finding>,
        overrides: &Overrides,
    ) -> anyhow::Result<Outcome> {
        let snapshot = self.snapshot(cluster, phase).await?;
        let mut findings = extra;
        // Evaluation is synchronous (and wasmtime-wasi's sync I/O must not block an async
        // worker), so it runs on the blocking pool.
        let (set, ctx) = (self.set.clone(), ctx.clone());
        let evaluations =
            tokio::task::spawn_blocking(move || set.evaluate(phase, &ctx, Arc::new(snapshot)))
                .await?;
        for e in evaluations {
            findings.extend(e.findings);
        }
        Ok(decide(phase, findings, overrides))
    }
}

/// Which errors still block after `--ignore` and `--force`.
pub fn decide(phase: Phase, findings: Vec<Finding>, overrides: &Overrides) -> Outcome {
    let mut overridden = Vec::new();
    let mut blocked = false;
    for f in findings.iter().filter(|f| f.severity == Severity::Error) {
        if overrides.ignore.iter().any(|c| c == &f.code) || overrides.force {
            overridden.push(f.code.clone());
        } else {
            blocked = true;
        }
    }
    overridden.dedup();
    Outcome {
        phase: phase.as_str().into(),
        findings,
        blocked,
        overridden,
    }
}

/// The context every policy sees for this run.
pub fn context(
    phase: Phase,
    source: &dyn Source,
    installed: &Installed,
    plan: &Plan,
    outcome: Option<(bool, String)>,
) -> anyhow::Result<PolicyContext> {
    use policy::{ApplyOutcome, ComponentInfo, VersionRange};
    let prev = plan.previous.as_ref();
    let or_empty = |v: Option<&Value>| v.cloned().unwrap_or_else(|| json!({}));
    Ok(PolicyContext {
        phase,
        direction: plan.direction,
        current_version: plan.current_version.clone(),
        target_version: plan.target_version.clone(),
        revision: if installed.control_planes.is_empty() {
            String::new()
        } else {
            installed.revision()
        },
        install_method: installed.method.name().to_string(),
        namespace: plan.namespace.clone(),
        source: source.kind(),
        components: source
            .facts()
            .components
            .iter()
            .map(|c| {
                let at = source.placement(c);
                ComponentInfo {
                    name: c.name.clone(),
                    role: c.role,
                    release: at.release,
                    chart: at.chart,
                    namespace: at.namespace,
                    values: source.component_values(c, &plan.values),
                }
            })
            .collect(),
        kubernetes_version: installed
            .kubernetes_version
            .trim_start_matches('v')
            .to_string(),
        supported_kubernetes: VersionRange {
            min: source.facts().kubernetes.min.clone(),
            max: source.facts().kubernetes.max.clone(),
        },
        values_old: or_empty(prev.and_then(|p| p.values.as_ref())),
        values_new: plan.values.clone(),
        // The defaults as the templates read them (charts' under the profile), so that a
        // value Istio moved from its profiles into its charts is no change.
        profile_defaults_old: or_empty(plan.effective_defaults.as_ref().map(|d| &d.old)),
        profile_defaults_new: plan
            .effective_defaults
            .as_ref()
            .map(|d| d.new.clone())
            .unwrap_or_else(|| source.effective_defaults(&plan.profile_defaults)),
        profile_old: prev.map(|p| p.profile.clone()).unwrap_or_default(),
        profile_new: plan.profile.clone(),
        overlay_old: or_empty(prev.map(|p| &p.overlay)),
        overlay_new: plan.overlay.clone(),
        outcome: outcome.map(|(succeeded, message)| ApplyOutcome { succeeded, message }),
        config: Value::Null,
        now: crate::installed::history::now(),
    })
}

/// The host's own findings for missing permissions (a policy cannot ask the API this): what
/// the run could not read (`refused`: its plan is incomplete), and what the change would
/// need (`missing`, asked of the API server). Both are `permissions.missing`, an error: a
/// run that cannot read its history or write its objects must not go on.
pub fn permission_findings(
    missing: &[crate::cluster::permissions::Missing],
    refused: &[crate::cluster::permissions::Refused],
) -> Vec<Finding> {
    use crate::cluster::permissions::grouped;
    let finding = |subject: &str, message: String, remediation: &str| Finding {
        policy: "host".into(),
        source: "host".into(),
        code: "permissions.missing".into(),
        severity: Severity::Error,
        message,
        remediation: Some(remediation.into()),
        subject: Some(subject.into()),
    };
    let mut out = vec![];
    if !refused.is_empty() {
        let list = grouped(refused.iter().map(|r| (&r.missing, Some(r.why.as_str()))));
        out.push(finding(
            "read",
            format!(
                "the current user may not read: {}; what it could not read is unknown to this plan",
                list.join("; ")
            ),
            "grant these reads (the built-in `view` role reads no Secrets and no cluster-scoped kinds), or run as a user who has them",
        ));
    }
    if !missing.is_empty() {
        let list = grouped(missing.iter().map(|m| (m, None)));
        out.push(finding(
            "upgrade",
            format!("the current user may not: {}", list.join("; ")),
            "grant these verbs (e.g. a ClusterRoleBinding to cluster-admin for the upgrade), or run as a user who has them",
        ));
    }
    out
}

/// The host's finding for a value the installer chose from the cluster (istioctl's
/// cluster-specific settings) that this run chooses differently for this cluster: never a
/// value the user set, and never changed without a word.
pub fn cluster_specific_findings(plan: &Plan) -> Vec<Finding> {
    plan.cluster_specific_changes
        .iter()
        .map(|c| {
            let show = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => "(unset)".into(),
                v => v.to_string(),
            };
            Finding {
                policy: "host".into(),
                source: "host".into(),
                code: "plan.cluster-specific".into(),
                severity: Severity::Warning,
                message: format!(
                    "{} is {} where the control plane runs now (its installer chose it from the cluster); for this cluster the target chooses {}",
                    c.path,
                    show(&c.old),
                    show(&c.new)
                ),
                remediation: Some(format!(
                    "to keep it: --set {}={}",
                    c.path,
                    show(&c.old)
                )),
                subject: Some(c.path.clone()),
            }
        })
        .collect()
}

/// The host's finding for each behaviour the target release changes (Istio's compatibility
/// profiles name them), with the input that keeps the running release's behaviour.
pub fn behaviour_findings(plan: &Plan) -> Vec<Finding> {
    plan.behaviour_changes
        .iter()
        .map(|c| Finding {
            policy: "host".into(),
            source: "host".into(),
            code: "plan.behaviour-change".into(),
            severity: Severity::Warning,
            message: format!(
                "{} changes {} of {} ({} had {}): Istio lists it as a behaviour change",
                plan.target_version,
                c.path,
                c.component,
                plan.current_version.as_deref().unwrap_or("the running release"),
                c.old
            ),
            remediation: Some(format!(
                "keep the old behaviour for now: {} (Istio keeps each compatibility version for at least two releases)",
                c.keep
            )),
            subject: Some(format!("{}:{}", c.component, c.path)),
        })
        .collect()
}

/// The host's findings about the Helm releases of the install: a newest revision left
/// pending blocks (Helm itself refuses every later upgrade and rollback of it), and Helm
/// records left unread are said.
pub fn helm_findings(installed: &Installed, plan: &Plan) -> Vec<Finding> {
    // A revision meshup left pending (a killed run) is finished by this run's start.
    let others = installed
        .helm
        .releases
        .iter()
        .filter(|r| !r.pending_by_meshup);
    let pending = others.filter_map(|r| {
        let resolve = r.resolution()?;
        let (what, after) = if r.status == crate::installed::helm::record::Status::PendingInstall
        {
            (
                "the install",
                "uninstalls what the interrupted install applied; install it again afterwards"
                    .to_string(),
            )
        } else {
            (
                "the upgrade or rollback",
                match r.last_deployed {
                    Some(to) => format!("returns the release to revision {to}, its last deployed one"),
                    None => "returns the release to the revision before".to_string(),
                },
            )
        };
        Some(Finding {
            policy: "host".into(),
            source: "host".into(),
            code: "helm.pending".into(),
            severity: Severity::Error,
            message: format!(
                "Helm release {}/{} ({}): its newest revision {} is {}: {what} that wrote it (a helm \
                 or meshup run) was interrupted before it recorded how it ended, so the cluster may be \
                 between two versions; until it is resolved every `helm upgrade` and `helm rollback` \
                 of it refuses (\"another operation (install/upgrade/rollback) is in progress\")",
                r.namespace,
                r.name,
                r.chart_ref(),
                r.revision,
                r.status
            ),
            remediation: Some(format!(
                "make sure no helm or meshup run is still going on, then `{resolve}` ({after})"
            )),
            subject: Some(format!("{}/{}", r.namespace, r.name)),
        })
    });
    let unread = installed.helm.notes.iter().map(|note| Finding {
        policy: "host".into(),
        source: "host".into(),
        code: "helm.unread".into(),
        severity: Severity::Warning,
        message: note.clone(),
        remediation: None,
        subject: None,
    });
    pending
        .chain(unread)
        .chain(unmatched_releases(installed, plan))
        .collect()
}

/// Over a Helm install, the releases of Istio's charts that the target renders none of
/// (a gateway release by another name than the ones given): meshup would install a second
/// gateway beside it and leave it on the old release.
fn unmatched_releases(installed: &Installed, plan: &Plan) -> Vec<Finding> {
    if !matches!(installed.method, InstallMethod::Helm { .. }) {
        return vec![];
    }
    let rendered: std::collections::BTreeSet<&str> = plan
        .rendered
        .objects
        .iter()
        .map(|o| o.component.as_str())
        .collect();
    // A source of another language (a bundle) renders no release at all: the
    // install-method check says that once.
    if !installed
        .helm
        .releases
        .iter()
        .any(|r| rendered.contains(r.name.as_str()))
    {
        return vec![];
    }
    installed
        .helm
        .releases
        .iter()
        .filter(|r| !rendered.contains(r.name.as_str()))
        .map(|r| {
            let fix = match r.chart.as_str() {
                "gateway" => format!("add --gateway {}/{}", r.namespace, r.name),
                _ => format!(
                    "meshup upgrades Istio's Helm releases under their documented names (istio-base, istiod); release {} of chart {} is not one of them: upgrade it with helm",
                    r.name, r.chart
                ),
            };
            Finding {
                policy: "host".into(),
                source: "host".into(),
                code: "helm.release-unmatched".into(),
                severity: Severity::Error,
                message: format!(
                    "Helm release {}/{} ({}) is part of the install, but this run renders nothing of it, so it would stay on {}",
                    r.namespace,
                    r.name,
                    r.chart_ref(),
                    r.app_version
                ),
                remediation: Some(fix),
                subject: Some(format!("{}/{}", r.namespace, r.name)),
            }
        })
        .collect()
}

/// The host's finding when what the user set at install cannot be known: today's istioctl
/// (1.21 and later) keeps no installed-state, and meshup has no history of the install, so
/// a value set then with `-f`/`--set` that this run does not set reverts without a
/// `values-revert` finding. Said plainly, with how to check.
/// With `--from-istioctl` the reverts are checked (`engine::reverts`), so nothing is said.
pub fn installer_findings(installed: &Installed, from_istioctl: bool) -> Vec<Finding> {
    let InstallMethod::Istioctl { spec, .. } = &installed.method else {
        return vec![];
    };
    let recorded = spec.as_object().is_some_and(|m| !m.is_empty());
    if recorded || installed.release.is_some() || installed.history_unreadable || from_istioctl {
        return vec![];
    }
    vec![Finding {
        policy: "host".into(),
        source: "host".into(),
        code: "plan.reverts-unknown".into(),
        severity: Severity::Warning,
        message: "istioctl installed this control plane without an installed-state (istioctl 1.21 and \
                  later keep none) and meshup has no history of it: what was set at install (-f, --set) \
                  cannot be read back, so a value set then that this run does not set reverts without a \
                  values-revert finding"
            .into(),
        remediation: Some(
            "check them: add --from-istioctl PATH (the istioctl that installed it; --from-manifests DIR \
             for its --manifests): meshup re-renders the installed release with this run's inputs and \
             names each value set at install that this run reverts, with the --set that keeps it. Or give \
             this run the install's -f files and --set values and read --diff changes. From this run on, \
             meshup's history records the inputs"
                .into(),
        ),
        subject: None,
    }]
}

/// The host's finding for objects the API server refuses in the dry-run.
pub fn rejection_findings(plan: &Plan) -> Vec<Finding> {
    plan.changes
        .iter()
        .filter_map(|c| {
            let why = c.rejected.as_ref()?;
            Some(Finding {
                policy: "host".into(),
                source: "host".into(),
                code: "plan.rejected".into(),
                severity: Severity::Error,
                message: format!("the API server refuses the change to {}: {why}", c.object),
                remediation: Some(if why.contains("typed patch object") {
                    "a field this run renders has the wrong type, usually from a value on the command line: \
                     --set reads true, false and numbers as such; give a value that must be a string in a values \
                     file (-f), quoted (key: \"true\")"
                        .into()
                } else {
                    "the live object differs in a field that cannot change (it was not created from this bundle); \
                     upgrade it with the tool that installed it, or delete it first if that is safe"
                        .into()
                }),
                subject: Some(c.object.clone()),
            })
        })
        .collect()
}
