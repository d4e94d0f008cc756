//! Hostile policies through the real runtime (wasmtime): each ends in one clear
//! error naming the policy and the reason, the next policy still runs, and the
//! audit log records it (and replays identically). What they hand back is bounded at
//! the boundary, attributed to its source, and reported only under their own name.
//! (What reaches a terminal is checked through the binary in `cli.rs` and e2e.)

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use meshup::base::exit::Code;
use meshup::cli::exit::code_of;
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
    let snapshot = Arc::new(Snapshot::from_yaml_str(HEALTHY_OBJECTS).unwrap());
    let evals = set.evaluate(Phase::Precheck, &ctx(), snapshot.clone());
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
    failed("sockets.wasm", "refused", "wasi:sockets/");
    failed("filesystem.wasm", "refused", "wasi:filesystem/");
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
        assert_eq!(e.findings[0].code, format!("{name}.read-refused"), "{name}");
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
    let snap = Arc::new(Snapshot::from_yaml_str(FROZEN).unwrap());
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
    let e = set.evaluate(Phase::PreUpgrade, &ctx, snap.clone());
    assert_eq!(e[0].findings[0].code, "change-freeze.frozen");
    assert!(e[0].blocks());
    assert!(
        set.evaluate(Phase::PostUpgrade, &ctx, snap.clone())
            .is_empty(),
        "not a post-upgrade policy"
    );

    write("other-name");
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx, snap.clone());
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
    let snap = Arc::new(Snapshot::from_yaml_str(HEALTHY_OBJECTS).unwrap());
    let evals = set.evaluate(Phase::Precheck, &ctx, snap.clone());
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
        set.evaluate(Phase::PostUpgrade, &ctx, snap.clone()).len(),
        1,
        "only webhooks runs post-upgrade"
    );

    ctx.install_method = "helm".into();
    let helm = set.evaluate(Phase::Precheck, &ctx, snap.clone());
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
    let e = warn.evaluate(Phase::Precheck, &ctx, snap.clone());
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

/// A policy configuration listing each (file, extra YAML for its entry), pinned.
fn config_of(
    dir: &std::path::Path,
    include_defaults: bool,
    files: &[(&std::path::Path, &str)],
) -> std::path::PathBuf {
    let mut yaml = format!("include_defaults: {include_defaults}\npolicies:\n");
    for (p, extra) in files {
        yaml += &format!("  - source: {}\n    sha256: {}\n", p.display(), digest(p));
        for l in extra.lines() {
            yaml += &format!("    {l}\n");
        }
    }
    let cfg = dir.join("policies.yaml");
    fs::write(&cfg, yaml).unwrap();
    cfg
}

#[test]
fn policy_text_is_bounded_at_the_boundary_and_kept_exact_in_the_log() {
    let dir = scratch("text");
    let (forge, bigmsg, bigcode, foreign) = (
        guest("forge"),
        guest("bigmsg"),
        guest("bigcode"),
        guest("foreign"),
    );
    let cfg = config_of(
        &dir,
        false,
        &[(&forge, ""), (&bigmsg, ""), (&bigcode, ""), (&foreign, "")],
    );
    let mut yaml = fs::read_to_string(&cfg).unwrap();
    yaml += "  - source: builtin:skew\n";
    fs::write(&cfg, yaml).unwrap();
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx(), Arc::new(Snapshot::default()));
    let by = |name: &str| evals.iter().find(|e| e.policy == name).unwrap();

    // Exact text (escape sequences and all) in the evaluation, attributed to the file.
    let f = &by("forge").findings[0];
    assert_eq!(f.code, "forge.screen");
    assert!(
        f.message.contains("\x1b[2K\r\x1b[32mprecheck passed") && f.message.contains('\u{202e}')
    );
    assert_eq!(f.source, origin("forge"));

    // 50 MiB message: cut to 4 KiB with the marker; the 1 MiB log line to the 64 KiB log budget.
    let f = &by("bigmsg").findings[0];
    assert_eq!(by("bigmsg").outcome, Outcome::Ok);
    assert!(f.message.len() <= 4096 + 40, "{}", f.message.len());
    assert!(f.message.ends_with("…(truncated, 52428800 bytes)"));

    // 100 KiB code: cut to 128 B, which is no longer a code: a blocking policy.failed.
    let e = by("bigcode");
    assert_eq!(e.findings.len(), 1);
    let f = &e.findings[0];
    assert_eq!(
        (f.code.as_str(), f.severity),
        ("policy.failed", Severity::Error)
    );
    assert!(
        f.message.contains("policy bigcode") && f.message.contains("(truncated, 102400 bytes)"),
        "{}",
        f.message
    );
    assert!(f.message.len() < 1024);

    // A foreign code prefix: that finding becomes policy.failed naming the policy; its own stays.
    let e = by("foreign");
    let codes: Vec<&str> = e.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["policy.failed", "foreign.own"]);
    assert!(e.blocks());
    assert!(
        e.findings[0].message.contains("policy foreign")
            && e.findings[0].message.contains("`skew.too-far`")
    );
    assert_eq!(e.findings[0].source, origin("foreign"));

    // The next policy still ran, attributed to the builtin.
    let skew = by("skew");
    assert_eq!(
        (
            skew.findings[0].code.as_str(),
            skew.findings[0].source.as_str()
        ),
        ("skew.too-far", "builtin")
    );

    // The audit log keeps exactly what the host kept: bounded, limits recorded.
    let log = dir.join("audit.jsonl");
    let size = fs::metadata(&log).unwrap().len();
    assert!(size < 512 * 1024, "audit log is {size} bytes");
    let recs = audit::read(&log).unwrap();
    let big = &recs.iter().find(|(_, r)| r.policy == "bigmsg").unwrap().1;
    assert_eq!(big.limits.message_bytes, 4096);
    assert_eq!(big.findings[0].message, by("bigmsg").findings[0].message);
    assert!(big.log_truncated);
    assert!(big.logs[0].message.ends_with("…(truncated, 1048576 bytes)"));
    assert!(big.logs[0].message.len() <= 64 * 1024 + 40);
    let forged = &recs.iter().find(|(_, r)| r.policy == "forge").unwrap().1;
    assert!(
        forged.logs[0].message.contains("\x1b]0;"),
        "the log keeps the exact text"
    );
    eprintln!("50 MiB probe: audit log {size} bytes for 5 evaluations");

    // Tighter limits from the configuration apply at the boundary.
    let cfg = config_of(&dir, false, &[(&bigmsg, "limits: {message_bytes: 100}")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx(), Arc::new(Snapshot::default()));
    assert!(e[0].findings[0].message.starts_with(&"A".repeat(100)));
    assert_eq!(
        e[0].findings[0].message.len(),
        100 + "…(truncated, 52428800 bytes)".len()
    );
    let cfg = config_of(&dir, false, &[(&bigmsg, "limits: {findings_bytes: 2048}")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx(), Arc::new(Snapshot::default()));
    assert_eq!(e[0].outcome.label(), "findings-too-large");
    assert!(
        e[0].findings[0]
            .message
            .contains("more than the limit of 2048 bytes")
    );
}

#[test]
fn a_builtins_name_is_taken_only_by_replacing_it() {
    let dir = scratch("identity");
    let impostor = guest("impostor");
    let snap = Arc::new(Snapshot::from_yaml_str(HEALTHY_OBJECTS).unwrap());

    // Beside the builtin: refused (blocking, attributed to the file); the builtin runs.
    let cfg = config_of(&dir, true, &[(&impostor, "")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx(), snap.clone());
    let file = evals
        .iter()
        .find(|e| e.source == origin("impostor"))
        .unwrap();
    assert_eq!(file.outcome.label(), "refused");
    assert_ne!(file.policy, "skew", "a refused file does not keep the name");
    let m = &file.findings[0].message;
    assert!(
        m.contains("already taken by builtin:skew") && m.contains("replaces: builtin:skew"),
        "{m}"
    );
    let skews: Vec<_> = evals.iter().filter(|e| e.policy == "skew").collect();
    assert_eq!(skews.len(), 1);
    assert_eq!(skews[0].source, "builtin");
    assert_eq!(skews[0].findings[0].code, "skew.too-far");
    assert!(set.replacements().is_empty());

    // Without the builtin in the run, the name is still the builtin's.
    let cfg = config_of(&dir, false, &[(&impostor, "")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx(), snap.clone());
    assert!(
        e[0].findings[0]
            .message
            .contains("is the name of builtin:skew"),
        "{:?}",
        e[0]
    );

    // With `replaces`, it runs instead of the builtin, and the log says so.
    let cfg = config_of(&dir, true, &[(&impostor, "replaces: builtin:skew")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx(), snap.clone());
    let skews: Vec<_> = evals.iter().filter(|e| e.policy == "skew").collect();
    assert_eq!(skews.len(), 1, "the builtin did not run");
    assert_eq!(skews[0].source, origin("impostor"));
    assert_eq!(skews[0].findings[0].source, origin("impostor"));
    assert!(skews[0].findings[0].message.starts_with("impostor"));
    let note = format!("builtin:skew replaced by skew ({})", origin("impostor"));
    assert_eq!(set.replacements(), [note.as_str()]);
    let text = fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let header: audit::Header = serde_json::from_str(
        text.lines()
            .rev()
            .find(|l| l.contains("\"type\":\"header\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header.replaced, [note]);
    let recs = audit::read(&dir.join("audit.jsonl")).unwrap();
    let last = recs.iter().rev().find(|(_, r)| r.policy == "skew").unwrap();
    assert_eq!(last.1.replaces.as_deref(), Some("skew"));

    // Two files with one name: the second is refused, naming the first.
    let copy = dir.join("forge-copy.wasm");
    fs::copy(guest("forge"), &copy).unwrap();
    let cfg = config_of(&dir, false, &[(&guest("forge"), ""), (&copy, "")]);
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let e = set.evaluate(Phase::Precheck, &ctx(), snap.clone());
    assert_eq!(e[0].policy, "forge");
    assert_eq!(e[1].outcome.label(), "refused");
    assert!(
        e[1].findings[0].message.contains("already taken by"),
        "{:?}",
        e[1]
    );
}

#[test]
fn two_runs_appending_to_one_audit_log_keep_one_chain() {
    let dir = scratch("chain");
    let cfg = dir.join("p.yaml");
    fs::write(
        &cfg,
        "include_defaults: false\npolicies: [{source: builtin:skew}, {source: builtin:revision}]\n",
    )
    .unwrap();
    // Two runs open the log (two headers), then append in turns: each link is made
    // from the file's real last line, not from what that run wrote last.
    let a = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let b = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let snap = Arc::new(Snapshot::default());
    for set in [&a, &b, &a, &b] {
        set.evaluate(Phase::Precheck, &ctx(), snap.clone());
    }
    let log = audit::verify(&dir.join("audit.jsonl")).unwrap();
    assert_eq!((log.runs, log.records.len()), (2, 8));
    assert_eq!(log.head.len(), 64);
}

/// A real component built against the previous WIT package (`meshup:policy@0.2.0`, the
/// guest `old-wit`) is refused at load with one message naming both versions; in a set it
/// fails every phase it is in and the next policy still runs.
#[test]
fn a_policy_built_for_the_previous_wit_is_refused_at_load() {
    let want = "built for meshup:policy@0.2.0; this meshup speaks meshup:policy@0.3.0: rebuild it against meshup-policy-sdk 0.3";
    let old = guest("old-wit");
    let rt = Runtime::new(Some(&cache_dir())).unwrap();
    let bytes = fs::read(&old).unwrap();
    let refusal = rt
        .load(&bytes, &meshup::policy::Limits::default())
        .err()
        .unwrap();
    assert_eq!(refusal.0, want);

    let dir = scratch("old-wit");
    let cfg = config_of(&dir, false, &[(&old, "")]);
    let mut yaml = fs::read_to_string(&cfg).unwrap();
    yaml += "  - source: builtin:skew\n";
    fs::write(&cfg, yaml).unwrap();
    let set = PolicySet::load(Some(&cfg), opts(&dir)).unwrap();
    let evals = set.evaluate(Phase::Precheck, &ctx(), Arc::new(Snapshot::default()));
    let e = evals
        .iter()
        .find(|e| e.source == origin("old-wit"))
        .unwrap();
    assert_eq!(e.outcome.label(), "refused");
    assert!(e.blocks());
    assert!(e.findings[0].message.contains(want), "{:?}", e.findings);
    let skew = evals.iter().find(|e| e.policy == "skew").unwrap();
    assert_eq!(skew.findings[0].code, "skew.too-far");
}
