//! Hostile policy files through `meshup precheck --policy-config` and `upgrade` against
//! the simulator: what a policy prints is escaped, bounded and attributed; a file takes a
//! builtin's name only by replacing it, and the plan, history and audit log say so.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

#[path = "../../host/tests/common/untrusted.rs"]
mod untrusted;
use untrusted::{digest, guest, origin};

/// A policy configuration (defaults included) listing the guests with extra entry YAML.
fn config(dir: &Path, guests: &[(&str, &str)]) -> String {
    let mut yaml = String::from("policies:\n");
    for (name, extra) in guests {
        let p = guest(name);
        yaml += &format!("  - source: {}\n    sha256: {}\n", p.display(), digest(&p));
        if !extra.is_empty() {
            yaml += &format!("    {extra}\n");
        }
    }
    let path = dir.join(format!("policies-{}.yaml", guests.len()));
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_string()
}

fn assert_inert(run: &Run) {
    untrusted::assert_inert("precheck", run.stdout.as_bytes(), run.stderr.as_bytes());
}

#[test]
fn hostile_policy_files_in_a_precheck_are_contained() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    let cfg = config(
        sim.dir.path(),
        &[
            ("forge", ""),
            ("bigmsg", ""),
            ("foreign", ""),
            ("impostor", "replaces: builtin:skew"),
        ],
    );
    let audit = sim.dir.path().join("audit.jsonl");
    let a = audit.to_str().unwrap();
    let target = b("istio-1.8.6");
    let args = [
        "precheck",
        "--bundle",
        &target,
        "--policy-config",
        &cfg,
        "--audit-log",
        a,
    ];

    let run = sim.meshup(&args);
    run.expect(3);
    assert_inert(&run);
    let bytes = run.stdout.len() + run.stderr.len();
    eprintln!("precheck with a 50 MiB finding message: {bytes} bytes of output");
    assert!(bytes < 64 * 1024, "{bytes} bytes");
    let out = &run.stdout;
    assert!(
        out.contains(&format!(
            "note: builtin:skew replaced by skew ({})",
            origin("impostor")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("forge.screen (forge, {})", origin("forge"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("skew.too-far (skew, {})", origin("impostor"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("policy.failed (foreign, {})", origin("foreign"))),
        "{out}"
    );
    assert!(out.contains("…(truncated, 52428800 bytes)"), "{out}");
    assert!(
        run.stderr.contains("policy.failed") && run.stderr.contains("skew.too-far"),
        "{}",
        run.stderr
    );

    // -o json: exact text, a source on every finding, the replacement named.
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let run = sim.meshup(&json_args);
    assert_inert(&run);
    let doc = run.json();
    assert_eq!(
        doc["replaced_policies"][0],
        format!("builtin:skew replaced by skew ({})", origin("impostor"))
    );
    let findings = doc["findings"].as_array().unwrap();
    assert!(findings.iter().all(|f| f["source"].is_string()), "{doc:#}");
    let forged = findings
        .iter()
        .find(|f| f["code"] == "forge.screen")
        .unwrap();
    assert!(forged["message"].as_str().unwrap().contains("\x1b[32m"));
    assert!(
        !findings
            .iter()
            .any(|f| f["code"] == "skew.too-far" && f["source"] == "builtin"),
        "the replaced builtin did not run"
    );

    // Every policy of the run is in the audit log, the builtins after the hostile files.
    let log = meshup::policy::audit::verify(&audit).unwrap();
    assert_eq!(log.runs, 2);
    let policies: Vec<&str> = log
        .records
        .iter()
        .take(log.records.len() / 2)
        .map(|(_, r)| r.policy.as_str())
        .collect();
    let mut expected = vec!["forge", "bigmsg", "foreign", "skew"];
    expected.extend(meshup::policy::builtin::names().filter(|n| *n != "skew"));
    assert_eq!(policies, expected);
    assert!(log.records.iter().all(|(_, r)| r.outcome.label() == "ok"));
}

#[test]
fn a_replaced_builtin_is_recorded_in_history() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    let cfg = config(sim.dir.path(), &[("impostor", "replaces: builtin:skew")]);
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--policy-config",
        &cfg,
        "--ignore",
        "skew.too-far",
    ]);
    run.expect(0);
    assert!(
        run.stdout
            .contains("note: builtin:skew replaced by skew (file impostor.wasm"),
        "{}",
        run.stdout
    );
    let history = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    let last: &Value = history["releases"].as_array().unwrap().last().unwrap();
    assert_eq!(last["version"], "1.8.6");
    assert_eq!(
        last["overridden"],
        serde_json::json!([
            "ignored skew.too-far",
            format!("builtin:skew replaced by skew ({})", origin("impostor"))
        ])
    );
}
