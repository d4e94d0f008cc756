//! Hostile policies through the real runtime (wasmtime): each ends in one clear
//! error naming the policy and the reason, the next policy still runs, and the
//! audit log records it (and replays identically).

mod common;

use std::fs;

use common::*;
use meshup::exit::{Code, code_of};
use meshup::policy::audit::{self, AuditRecord};
use meshup::policy::runtime::Runtime;
use meshup::policy::{
    Outcome, Phase, PolicyContext, PolicySet, RuntimeOptions, Severity, Snapshot, replay,
};

fn ctx() -> PolicyContext {
    let mut v = context_json();
    v["current_version"] = "1.6.14".into(); // skew.too-far: proves the good policy after each hostile one ran
    serde_json::from_value(v).unwrap()
}

fn opts(dir: &std::path::Path) -> RuntimeOptions {
    RuntimeOptions {
        cache_dir: Some(cache_dir()),
        audit_log: Some(dir.join("audit.jsonl")),
        no_cache: false,
    }
}

#[test]
fn every_hostile_policy_fails_cleanly_and_the_next_one_runs() {
    let dir = scratch("hostile");
    let tampered = dir.join("tampered.wasm");
    let mut bytes = fs::read(example("change-freeze")).unwrap();
    let pin = meshup::policy::cache::sha256_hex(&bytes);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&tampered, &bytes).unwrap();
    let text = dir.join("not-a-component.wasm");
    fs::write(&text, "this is not WebAssembly\n").unwrap();

    let mut yaml = String::from("include_defaults: false\npolicies:\n");
    let hostile = [
        "loop",
        "membomb",
        "recursion",
        "panic",
        "flood",
        "undeclared",
        "secrets",
        "sockets",
        "filesystem",
    ];
    for name in hostile {
        let p = guest(name);
        yaml += &format!("  - source: {}\n    sha256: {}\n", p.display(), digest(&p));
        match name {
            "loop" => yaml += "    limits: {time_ms: 200}\n",
            "membomb" => yaml += "    limits: {memory_mib: 16}\n",
            _ => {}
        }
    }
    yaml += &format!("  - source: {}\n    sha256: {pin}\n", tampered.display());
    yaml += &format!(
        "  - source: {}\n    sha256: {}\n",
        text.display(),
        digest(&text)
    );
    yaml += "  - source: builtin:skew\n";
    let cfg = dir.join("policies.yaml");
    fs::write(&cfg, yaml).unwrap();

    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let snapshot = Snapshot::from_yaml_str(HEALTHY_OBJECTS).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx(), &snapshot);
    assert_eq!(
        evals.len(),
        12,
        "one evaluation per policy, refused ones included"
    );

    let by = |name: &str| {
        evals
            .iter()
            .find(|e| e.policy.contains(name))
            .unwrap_or_else(|| panic!("no evaluation for {name}"))
    };
    let failed = |name: &str, outcome: &str, reason: &str| {
        let e = by(name);
        assert_eq!(e.outcome.label(), outcome, "{name}: {:?}", e.outcome);
        assert_eq!(e.findings.len(), 1, "{name}");
        let f = &e.findings[0];
        assert_eq!(
            (f.code.as_str(), f.severity),
            ("policy.failed", Severity::Error),
            "{name}"
        );
        assert!(
            f.message.contains(&e.policy),
            "{name}: message names the policy: {}",
            f.message
        );
        assert!(
            f.message.contains(reason),
            "{name}: {:?} should mention {reason:?}",
            f.message
        );
    };
    failed("hostile-loop", "timed-out", "timed out after 200 ms");
    failed("hostile-membomb", "out-of-memory", "memory limit of 16 MiB");
    // Depending on where it runs out first: the wasm call stack, or Rust's shadow stack in linear memory.
    let rec = by("hostile-recursion");
    assert_eq!(rec.outcome.label(), "trapped");
    let m = &rec.findings[0].message;
    assert!(
        m.contains("call stack exhausted") || m.contains("out of bounds memory access"),
        "{m}"
    );
    failed(
        "hostile-panic",
        "trapped",
        "hostile guest panics on purpose",
    );
    failed(
        "hostile-flood",
        "too-many-findings",
        "returned 100000 findings",
    );
    failed("meshup_guest_sockets.wasm", "refused", "wasi:sockets/");
    failed(
        "meshup_guest_filesystem.wasm",
        "refused",
        "wasi:filesystem/",
    );
    failed("tampered.wasm", "refused", "sha256 mismatch");
    failed("not-a-component.wasm", "refused", "not a WebAssembly file");

    // Reads outside the grants are refused (an error to the guest), audited, and the policy goes on.
    for (name, why) in [
        (
            "hostile-undeclared",
            "not granted to policy hostile-undeclared",
        ),
        ("hostile-secrets", "Secrets are granted only by name"),
    ] {
        let e = by(name);
        assert_eq!(e.outcome, Outcome::Ok, "{name}");
        assert_eq!(e.findings[0].code, "hostile.read-refused", "{name}");
        assert!(
            e.findings[0].message.contains(why),
            "{name}: {}",
            e.findings[0].message
        );
    }
    let skew = by("skew");
    assert_eq!(skew.outcome, Outcome::Ok);
    assert_eq!(skew.findings[0].code, "skew.too-far");

    // The audit log has one line per evaluation with the outcome and the denied calls.
    let recs: Vec<AuditRecord> = audit::read(&dir.join("audit.jsonl"))
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(recs.len(), 12);
    let labels: Vec<&str> = recs.iter().map(|r| r.outcome.label()).collect();
    assert_eq!(
        labels,
        [
            "timed-out",
            "out-of-memory",
            "trapped",
            "trapped",
            "too-many-findings",
            "ok",
            "ok",
            "refused",
            "refused",
            "refused",
            "refused",
            "ok"
        ]
    );
    let panic = recs.iter().find(|r| r.policy == "hostile-panic").unwrap();
    assert!(
        panic.stderr.contains("hostile guest panics on purpose"),
        "stderr captured: {:?}",
        panic.stderr
    );
    let secrets = recs.iter().find(|r| r.policy == "hostile-secrets").unwrap();
    assert_eq!(secrets.host_calls.len(), 1);
    assert!(!secrets.host_calls[0].allowed);
    assert_eq!(secrets.host_calls[0].kind, "Secret");
    assert!(
        secrets.host_calls[0].result.is_none(),
        "nothing of the secret leaks into the log"
    );
    assert!(recs.iter().all(|r| r.context.now == "2026-11-25T12:00:00Z"));

    // Replaying the log gives identical results.
    let rt = Runtime::new(Some(&cache_dir())).unwrap();
    let replayed = replay::replay(&rt, &dir.join("audit.jsonl"), None).unwrap();
    assert_eq!(replayed.len(), 12);
    for r in &replayed {
        assert!(
            r.identical,
            "line {} {}: {:?}",
            r.line, r.policy, r.differences
        );
    }
}

#[test]
fn grants_beyond_declared_reads_are_a_configuration_error() {
    let dir = scratch("grants");
    let cfg = dir.join("p.yaml");
    fs::write(
        &cfg,
        "policies:\n  - source: builtin:pdb\n    grants: [{apiVersion: v1, kind: Pod}]\n",
    )
    .unwrap();
    let err = PolicySet::load(Some(&cfg), opts(&dir)).err().unwrap();
    assert_eq!(code_of(&err), Code::BadInput);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("p.yaml")
            && msg.contains("policies[0] (builtin:pdb)")
            && msg.contains("not among the reads"),
        "{msg}"
    );

    fs::write(
        &cfg,
        "policies:\n  - source: builtin:pdb\n    grants: [{apiVersion: v1, kind: Secret}]\n",
    )
    .unwrap();
    let msg = format!(
        "{:#}",
        PolicySet::load(Some(&cfg), opts(&dir)).err().unwrap()
    );
    assert!(msg.contains("only by name"), "{msg}");
}

#[test]
fn change_freeze_reads_only_inside_its_grant() {
    let dir = scratch("freeze");
    let p = example("change-freeze");
    let cfg = dir.join("p.yaml");
    let write = |name: &str| {
        fs::write(
            &cfg,
            format!(
                "include_defaults: false\npolicies:\n  - source: {}\n    sha256: {}\n    grants: [{{apiVersion: v1, kind: ConfigMap, namespaces: [istio-system], names: [{name}]}}]\n",
                p.display(),
                digest(&p)
            ),
        )
        .unwrap()
    };
    let snap = Snapshot::from_yaml_str(FROZEN).unwrap();
    let ctx: PolicyContext = serde_json::from_value(context_json()).unwrap();

    write("mesh-freeze");
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    assert_eq!(
        set.reads(Phase::Precheck),
        [(
            "v1".to_string(),
            "ConfigMap".to_string(),
            vec!["istio-system".to_string()]
        )]
    );
    let e = set.evaluate(Phase::PreUpgrade, &ctx, &snap);
    assert_eq!(e[0].findings[0].code, "change-freeze.frozen");
    assert!(e[0].blocks());
    assert!(
        set.evaluate(Phase::PostUpgrade, &ctx, &snap).is_empty(),
        "not a post-upgrade policy"
    );

    write("other-name");
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx, &snap);
    assert_eq!(e[0].findings[0].code, "change-freeze.unreadable");
    assert!(
        e[0].findings[0]
            .message
            .contains("outside the grants of policy change-freeze"),
        "{}",
        e[0].findings[0].message
    );
}

#[test]
fn defaults_on_a_realistic_cluster_and_enforce_warn() {
    let dir = scratch("defaults");
    let set = PolicySet::load(None, opts(&dir)).unwrap();
    let mut ctx: PolicyContext = serde_json::from_value(context_json()).unwrap();
    let snap = Snapshot::from_yaml_str(HEALTHY_OBJECTS).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx, &snap);
    assert_eq!(evals.len(), 8);
    assert!(evals.iter().all(|e| e.outcome == Outcome::Ok), "{evals:?}");
    let codes: Vec<&str> = evals
        .iter()
        .flat_map(|e| e.findings.iter().map(|f| f.code.as_str()))
        .collect();
    assert_eq!(codes, ["profile-defaults.changed"], "{evals:#?}");
    let reads = set.reads(Phase::Precheck);
    assert!(
        reads
            .iter()
            .any(|(a, k, ns)| a == "apps/v1" && k == "Deployment" && ns.is_empty())
    );
    assert!(!reads.iter().any(|(_, k, _)| k == "Secret"));
    assert_eq!(
        set.evaluate(Phase::PostUpgrade, &ctx, &snap).len(),
        1,
        "only webhooks runs post-upgrade"
    );

    ctx.install_method = "helm".into();
    let helm = set.evaluate(Phase::Precheck, &ctx, &snap);
    assert!(
        helm.iter()
            .any(|e| e.blocks() && e.findings[0].code == "install-method.helm")
    );

    let cfg = dir.join("p.yaml");
    fs::write(
        &cfg,
        "policies:\n  - source: builtin:install-method\n    enforce: warn\n",
    )
    .unwrap();
    let warn = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = warn.evaluate(Phase::Precheck, &ctx, &snap);
    let im = e.iter().find(|e| e.policy == "install-method").unwrap();
    assert!(im.enforce_warn && !im.blocks());
    assert_eq!(im.findings[0].severity, Severity::Warning);
}

#[test]
fn cache_is_private_and_survives_corruption() {
    let dir = scratch("cache");
    let cache = dir.join("c");
    let o = RuntimeOptions {
        cache_dir: Some(cache.clone()),
        audit_log: None,
        no_cache: false,
    };
    let cfg = dir.join("p.yaml");
    fs::write(
        &cfg,
        "include_defaults: false\npolicies: [{source: builtin:revision}]\n",
    )
    .unwrap();
    PolicySet::load(Some(&cfg), o.clone()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    let files: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let mut bytes = fs::read(&files[0]).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0x55;
    fs::write(&files[0], bytes).unwrap();
    let set = PolicySet::load(Some(&cfg), o).unwrap();
    assert!(
        set.members()[0].loaded.is_ok(),
        "a corrupt artifact is recompiled, never loaded"
    );
}
