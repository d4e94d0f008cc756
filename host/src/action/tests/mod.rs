//! Action tests without a cluster (Helm's `action_test.go`): every action is built from
//! one configuration fixture, an in-memory cluster that fails on demand plus the memory
//! history driver, and run through the real bundles and the real builtin policies.

pub(crate) mod fake;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use self::fake::{FakeCluster, Stall};
use super::rollback::Rollback;
use super::upgrade::{Mode, Report, Upgrade};
use super::{Backend, Env};
use crate::base::exit::{Code, Exit};
use crate::engine::checks::{Checker, Overrides};
use crate::engine::plan::DiffMode;
use crate::engine::progress::{Event, Progress};
use crate::installed::history::{History, Memory, Release, Status};
use crate::release::source::Inputs;

/// The configuration every action of a test receives, and what it records.
struct Fixture {
    kube: Arc<FakeCluster>,
    releases: Arc<Memory>,
    env: Env,
    events: Recorder,
}

/// The events an action sent, one line each.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn event(&self, event: Event<'_>) {
        let line = match event {
            Event::Started { revision, .. } => format!("started revision {revision}"),
            Event::ComponentDone { report, verb } => format!("{verb} {}", report.name),
            Event::RollingBack { failure, .. } => format!("rolling back: {failure}"),
            Event::LockTakenOver(who) => format!("took over the lock of {who}"),
            Event::Warning(w) => format!("warning: {w}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn fixture() -> Fixture {
    let kube = Arc::new(FakeCluster::default());
    let releases = Arc::new(Memory::default());
    let backend = Backend::Given {
        kube: kube.clone(),
        releases: releases.clone(),
    };
    Fixture {
        kube,
        releases,
        env: Env::with_backend(backend).with_checker(builtin_policies()),
        events: Recorder::default(),
    }
}

/// The builtin policies, loaded once for every test (the fixture's actions share them as
/// the runs of one CLI process would).
fn builtin_policies() -> Arc<Checker> {
    static LOADED: OnceLock<Arc<Checker>> = OnceLock::new();
    LOADED
        .get_or_init(|| Arc::new(Checker::load(None, None).expect("builtin policies load")))
        .clone()
}

fn bundle(version: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../bundles/istio-{version}"))
}

fn upgrade(mode: Mode, version: &str) -> Upgrade {
    Upgrade {
        mode,
        target: crate::release::Target::Bundle(bundle(version)),
        inputs: Inputs::default(),
        yes: true,
        dry_run: false,
        overrides: Overrides::default(),
        readiness_timeout: Duration::from_secs(5),
        rollback_timeout: Duration::from_secs(5),
        no_rollback: false,
        diff: DiffMode::Summary,
        from: None,
    }
}

impl Fixture {
    async fn run(&self, up: Upgrade) -> anyhow::Result<Report> {
        up.run(&self.env, &self.events).await
    }

    /// 1.7.8 installed and recorded as revision 1.
    async fn installed(&self) -> &Self {
        let report = self.run(upgrade(Mode::Install, "1.7.8")).await.unwrap();
        assert_eq!(
            report.code,
            Code::Ok,
            "{:?} {:?}",
            report.pre.findings,
            report.result.map(|r| r.message)
        );
        self
    }

    async fn history(&self) -> Vec<Release> {
        History::new(self.releases.clone(), 10).all().await.unwrap()
    }

    async fn statuses(&self) -> Vec<(u32, Status)> {
        let all = self.history().await;
        all.iter().map(|r| (r.revision, r.status)).collect()
    }

    fn istiod_image(&self) -> String {
        let d = self
            .kube
            .object("Deployment", Some("istio-system"), "istiod")
            .expect("istiod exists");
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn code_of(r: anyhow::Result<Report>) -> Code {
    match r {
        Ok(r) => r.code,
        Err(e) => crate::cli::exit::code_of(&e),
    }
}

#[tokio::test]
async fn an_upgrade_applies_every_component_and_records_deployed() {
    let f = fixture();
    f.installed().await;
    let report = f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert_eq!(report.code, Code::Ok);
    let result = report.result.expect("a run result");
    assert_eq!(
        (result.status.as_str(), result.revision),
        ("deployed", Some(2))
    );
    assert_eq!(
        f.statuses().await,
        vec![(1, Status::Superseded), (2, Status::Deployed)]
    );
    assert!(f.istiod_image().ends_with(":1.8.6"), "{}", f.istiod_image());
    let events = f.events.lines();
    assert!(
        events.contains(&"started revision 2".to_string()),
        "{events:?}"
    );
    assert!(events.contains(&"applied istiod".to_string()), "{events:?}");
}

#[tokio::test]
async fn a_workload_never_ready_is_rolled_back_to_exactly_what_was_there() {
    let f = fixture();
    f.installed().await;
    let before = f.kube.contents();
    f.kube.stall(":1.8.6", Stall::NeverReady);
    let report = f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert_eq!(report.code, Code::RolledBack);
    assert_eq!(report.result.unwrap().status, "rolled-back");
    assert_eq!(
        f.statuses().await,
        vec![(1, Status::Deployed), (2, Status::RolledBack)]
    );
    assert_same_objects(&before, &f.kube.contents());
    assert!(f.istiod_image().ends_with(":1.7.8"));
    let events = f.events.lines();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("rolling back: waiting for istiod")),
        "{events:?}"
    );
    assert!(
        events.contains(&"restored istiod".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_progress_deadline_is_a_failure_too() {
    let f = fixture();
    f.installed().await;
    f.kube.stall(":1.8.6", Stall::DeadlineExceeded);
    let report = f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert_eq!(report.code, Code::RolledBack);
    assert!(
        f.events
            .lines()
            .iter()
            .any(|e| e.contains("progress deadline exceeded")),
        "{:?}",
        f.events.lines()
    );
}

#[tokio::test]
async fn a_write_failing_mid_apply_is_restored() {
    let f = fixture();
    f.installed().await;
    let before = f.kube.contents();
    // The ingress gateway comes after istiod: istiod is already at 1.8.6 when it fails.
    f.kube.fail("apply", "Deployment", "istio-ingressgateway");
    let report = f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert_eq!(report.code, Code::RolledBack);
    let message = report.result.unwrap().message;
    assert!(message.contains("applying ingress-gateway"), "{message}");
    assert!(f.events.lines().contains(&"applied istiod".to_string()));
    assert_same_objects(&before, &f.kube.contents());
}

#[tokio::test]
async fn a_restore_that_fails_says_not_restored_and_records_failed() {
    let f = fixture();
    f.installed().await;
    f.kube.stall(":1.8.6", Stall::NeverReady);
    f.kube.fail("replace_or_create", "Deployment", "istiod");
    let report = f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert_eq!(report.code, Code::NotRestored);
    let result = report.result.unwrap();
    assert_eq!(result.status, "failed");
    assert!(
        result
            .message
            .contains("the rollback to the previous release (1.7.8) did not complete"),
        "{}",
        result.message
    );
    assert_eq!(
        f.statuses().await,
        vec![(1, Status::Deployed), (2, Status::Failed)]
    );
}

#[tokio::test]
async fn no_rollback_leaves_it_and_the_rollback_action_restores() {
    let f = fixture();
    f.installed().await;
    let before = f.kube.contents();
    f.kube.stall(":1.8.6", Stall::NeverReady);
    let up = Upgrade {
        no_rollback: true,
        ..upgrade(Mode::Upgrade, "1.8.6")
    };
    let report = f.run(up).await.unwrap();
    assert_eq!(report.code, Code::NotRestored);
    assert!(f.istiod_image().ends_with(":1.8.6"), "left as is");
    assert_eq!(f.statuses().await[1], (2, Status::Failed));

    let rollback = rollback(None).run(&f.env, &f.events).await.unwrap();
    assert_eq!(rollback.outcome.code, Code::Ok);
    assert_eq!(rollback.outcome.status, Status::RolledBack);
    assert_eq!(rollback.outcome.revision, 2, "recorded on the failed run");
    assert_eq!(
        f.statuses().await,
        vec![(1, Status::Deployed), (2, Status::RolledBack)]
    );
    assert_same_objects(&before, &f.kube.contents());
}

fn rollback(to: Option<u32>) -> Rollback {
    Rollback {
        to,
        namespace: None,
        yes: true,
        readiness_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn rollback_to_a_revision_reapplies_it_as_a_new_one() {
    let f = fixture();
    f.installed().await;
    f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    assert!(f.istiod_image().ends_with(":1.8.6"));
    let report = rollback(Some(1)).run(&f.env, &f.events).await.unwrap();
    assert_eq!(report.outcome.code, Code::Ok);
    assert_eq!(
        (report.outcome.revision, report.outcome.restored_revision),
        (3, Some(1))
    );
    assert!(f.istiod_image().ends_with(":1.7.8"), "{}", f.istiod_image());
    assert_eq!(
        f.statuses().await,
        vec![
            (1, Status::Superseded),
            (2, Status::Superseded),
            (3, Status::Deployed)
        ]
    );
    let unknown = rollback(Some(9)).run(&f.env, &f.events).await;
    let e = unknown.err().expect("no revision 9");
    assert_eq!(crate::cli::exit::code_of(&e), Code::BadInput);
}

fn lease(holder: &str, renewed: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": crate::cluster::lock::LEASE_NAME, "namespace": "istio-system", "resourceVersion": "1"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
            "acquireTime": renewed, "renewTime": renewed}})
}

#[tokio::test]
async fn a_held_lock_refuses_the_run_and_changes_nothing() {
    let f = fixture();
    f.installed().await;
    let now = jiff::Timestamp::now().to_string();
    f.kube.insert(lease("alice@laptop pid 7", &now));
    let before = f.kube.contents();
    let result = f.run(upgrade(Mode::Upgrade, "1.8.6")).await;
    let e = result.err().expect("refused");
    assert_eq!(crate::cli::exit::code_of(&e), Code::Blocked);
    let exit = e.downcast_ref::<Exit>().expect("an exit error");
    assert!(
        exit.to_string().contains("holds the upgrade lock")
            && exit.to_string().contains("alice@laptop pid 7"),
        "{exit}"
    );
    assert_eq!(f.kube.contents(), before);
    assert_eq!(f.statuses().await, vec![(1, Status::Deployed)]);
}

#[tokio::test]
async fn an_expired_lock_is_taken_over_and_said() {
    let f = fixture();
    f.installed().await;
    f.kube.insert(lease("bob@ci pid 9", "2020-01-01T00:00:00Z"));
    let code = code_of(f.run(upgrade(Mode::Upgrade, "1.8.6")).await);
    assert_eq!(code, Code::Ok);
    let events = f.events.lines();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("took over the lock of bob@ci pid 9")),
        "{events:?}"
    );
    // Released at the end.
    assert!(
        f.kube
            .object(
                "Lease",
                Some("istio-system"),
                crate::cluster::lock::LEASE_NAME
            )
            .is_none()
    );
}

type Contents = std::collections::BTreeMap<(String, Option<String>, String), Value>;

/// Every object back with the same content and nothing else left, pods aside (they are
/// the controller's) and CRDs aside (a restore never deletes a CRD the run added: that
/// would delete every custom resource of its kind).
fn assert_same_objects(before: &Contents, after: &Contents) {
    let kept = |m: &Contents, other: &Contents| -> Vec<(String, Option<String>, String)> {
        m.keys()
            .filter(|(kind, _, _)| kind != "Pod")
            .filter(|k| !other.contains_key(*k))
            .cloned()
            .collect()
    };
    assert_eq!(
        kept(before, after),
        vec![],
        "objects missing after the restore"
    );
    let added = kept(after, before);
    assert!(
        added
            .iter()
            .all(|(kind, _, _)| kind == "CustomResourceDefinition"),
        "objects left behind: {added:?}"
    );
    for (key, was) in before.iter().filter(|((kind, _, _), _)| kind != "Pod") {
        assert_eq!(Some(was), after.get(key), "{key:?} is back as it was");
    }
}

#[tokio::test]
async fn control_plane_pods_off_the_target_version_fail_verification_and_are_restored() {
    let f = fixture();
    f.installed().await;
    let before = f.kube.contents();
    // The images run and are ready, but their tag is not the release's version.
    let mut up = upgrade(Mode::Upgrade, "1.8.6");
    up.inputs.set = vec!["tag=1.8.5".into()];
    let report = f.run(up).await.unwrap();
    assert_eq!(report.code, Code::RolledBack);
    let message = report.result.unwrap().message;
    assert!(
        message.contains(
            "verifying versions: expected every istiod pod at 1.8.6: istiod-0 runs 1.8.5"
        ),
        "{message}"
    );
    assert_same_objects(&before, &f.kube.contents());
}

/// Answers the question before a change as told, and remembers what it was asked.
struct Answer {
    yes: bool,
    asked: Mutex<Vec<String>>,
}

impl Progress for Answer {
    fn event(&self, _: Event<'_>) {}

    fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        self.asked.lock().unwrap().push(question.to_string());
        Ok(self.yes)
    }
}

#[tokio::test]
async fn a_declined_confirmation_aborts_and_changes_nothing() {
    let f = fixture();
    f.installed().await;
    let before = f.kube.contents();
    let no = Answer {
        yes: false,
        asked: Mutex::default(),
    };
    let up = Upgrade {
        yes: false,
        ..upgrade(Mode::Upgrade, "1.8.6")
    };
    assert_eq!(code_of(up.run(&f.env, &no).await), Code::Aborted);
    assert_eq!(
        *no.asked.lock().unwrap(),
        vec!["Proceed with the upgrade to 1.8.6?".to_string()]
    );
    assert_same_objects(&before, &f.kube.contents());
    assert_eq!(f.statuses().await, vec![(1, Status::Deployed)]);
}

#[tokio::test]
async fn without_anyone_to_ask_a_run_without_yes_is_refused() {
    let f = fixture();
    f.installed().await;
    let up = Upgrade {
        yes: false,
        ..upgrade(Mode::Upgrade, "1.8.6")
    };
    let Err(err) = up.run(&f.env, &crate::engine::progress::Silent).await else {
        panic!("a run without -y and without anyone to ask went ahead");
    };
    assert_eq!(crate::cli::exit::code_of(&err), Code::BadInput, "{err:#}");
    assert!(err.to_string().contains("pass -y"), "{err:#}");
    assert_eq!(f.statuses().await, vec![(1, Status::Deployed)]);
}

#[tokio::test]
async fn status_reports_the_release_control_plane_and_workloads() {
    let f = fixture();
    f.installed().await;
    let status = super::status::Status {
        namespace: None,
        discovery: crate::release::shipped::newest().discovery.clone(),
    };
    let report = status.run(&f.env).await.unwrap();
    assert_eq!(report.namespace, "istio-system");
    let release = report.installed.release.as_ref().expect("recorded release");
    assert_eq!((release.revision, release.version.as_str()), (1, "1.7.8"));
    let cp = report.installed.in_place().expect("in-place control plane");
    assert_eq!(cp.version.as_deref(), Some("1.7.8"));
    let istiod = report
        .workloads
        .iter()
        .find(|w| w.name == "istiod")
        .expect("istiod listed");
    assert_eq!(
        (istiod.version.as_str(), istiod.state.as_str()),
        ("1.7.8", "ready")
    );
    let doc = serde_json::to_value(report.doc()).unwrap();
    assert_eq!(doc["release"]["version"], "1.7.8");
    assert_eq!(doc["install_method"], "meshup");
}

#[tokio::test]
async fn history_lists_every_revision_oldest_first() {
    let f = fixture();
    f.installed().await;
    f.run(upgrade(Mode::Upgrade, "1.8.6")).await.unwrap();
    let list = super::history::ListHistory { namespace: None };
    let report = list.run(&f.env).await.unwrap();
    let rows: Vec<(u32, &str, &str)> = report
        .releases
        .iter()
        .map(|r| (r.revision, r.version.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![(1, "1.7.8", "superseded"), (2, "1.8.6", "deployed")]
    );
}
