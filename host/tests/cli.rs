//! The real `meshup` binary: `policy list|inspect|test|replay`, `-o json` and exit codes.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn meshup(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshup"))
        .args(args)
        .env("MESHUP_CACHE_DIR", cache_dir())
        .env_remove("RUST_LOG")
        .output()
        .expect("run meshup")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(o)))
}

fn write_context(dir: &Path, tweak: impl FnOnce(&mut Value)) -> String {
    let mut v = context_json();
    tweak(&mut v);
    let p = dir.join("ctx.json");
    fs::write(&p, v.to_string()).unwrap();
    p.display().to_string()
}

#[test]
fn list_lines_up_and_json_is_one_document() {
    let o = meshup(&["policy", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    let col = lines[0].find("SHA256").unwrap();
    for l in &lines[1..] {
        assert!(
            l[col..].chars().take(12).all(|c| c.is_ascii_hexdigit()),
            "columns line up: {l:?}"
        );
    }
    let o = meshup(&["policy", "list", "-o", "json"]);
    let v = json(&o);
    let names: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "skew",
            "revision",
            "install-method",
            "k8s-version",
            "pdb",
            "profile-defaults",
            "values-revert",
            "webhooks"
        ]
    );
    assert!(
        v["policies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["sha256"].as_str().unwrap().len() == 64)
    );
}

#[test]
fn inspect_builtin_and_refused_files() {
    let o = meshup(&["policy", "inspect", "builtin:webhooks", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["metadata"]["name"], "webhooks");
    assert_eq!(v["metadata"]["reads"].as_array().unwrap().len(), 4);
    let imports: Vec<&str> = v["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert!(imports.contains(&"meshup:policy/cluster@0.2.0"));
    assert_eq!(
        imports.iter().filter(|i| i.starts_with("wasi:")).count(),
        13,
        "{imports:?}"
    );
    assert_eq!(v["exports"], serde_json::json!(["metadata", "evaluate"]));

    let sockets = guest("sockets");
    let o = meshup(&["policy", "inspect", sockets.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stdout(&o).contains("wasi:sockets/tcp@0.2.6"),
        "imports are still shown"
    );
    assert!(
        stderr(&o).contains("refused: imports") && stderr(&o).contains("wasi:sockets/tcp"),
        "{}",
        stderr(&o)
    );

    let dir = scratch("cli-inspect");
    let junk = dir.join("junk.wasm");
    fs::write(&junk, "nope").unwrap();
    let o = meshup(&["policy", "inspect", junk.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not a WebAssembly file"),
        "{}",
        stderr(&o)
    );
    let o = meshup(&["policy", "inspect", "builtin:nope"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("unknown builtin policy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_exit_codes_and_replay() {
    let dir = scratch("cli-test");
    let ctx = write_context(&dir, |_| {});
    let objs = dir.join("objs.yaml");
    fs::write(&objs, FROZEN).unwrap();
    let audit = dir.join("audit.jsonl");
    let freeze = example("change-freeze");
    let a = audit.to_str().unwrap();

    // Blocked by a check: exit 3, -o json is one document.
    let o = meshup(&[
        "policy",
        "test",
        freeze.to_str().unwrap(),
        "--context",
        &ctx,
        "--objects",
        objs.to_str().unwrap(),
        "-o",
        "json",
        "--audit-log",
        a,
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["blocked"], true);
    assert_eq!(
        v["evaluation"]["findings"][0]["code"],
        "change-freeze.frozen"
    );
    assert_eq!(v["evaluation"]["outcome"], "ok");

    // Config override: watch another ConfigMap → nothing found → exit 0.
    let cfg = dir.join("cfg.json");
    fs::write(&cfg, r#"{"namespace":"istio-system","name":"absent"}"#).unwrap();
    let o = meshup(&[
        "policy",
        "test",
        freeze.to_str().unwrap(),
        "--context",
        &ctx,
        "--objects",
        objs.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--audit-log",
        a,
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("no findings"));

    // A builtin, text output.
    let skewed = write_context(&dir, |v| v["current_version"] = "1.6.0".into());
    let o = meshup(&[
        "policy",
        "test",
        "builtin:skew",
        "--context",
        &skewed,
        "--audit-log",
        a,
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).contains("error    skew.too-far"),
        "{}",
        stdout(&o)
    );

    // A hostile one: one clear error, exit 3.
    let o = meshup(&[
        "policy",
        "test",
        guest("panic").to_str().unwrap(),
        "--context",
        &ctx,
        "--audit-log",
        a,
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stdout(&o).contains("policy.failed")
            && stdout(&o).contains("hostile guest panics on purpose"),
        "{}",
        stdout(&o)
    );

    // Replay all four, then one line.
    let o = meshup(&["policy", "replay", "--audit-log", a]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches("identical").count(), 4, "{}", stdout(&o));
    let o = meshup(&[
        "policy",
        "replay",
        "--audit-log",
        a,
        "--line",
        "3",
        "-o",
        "json",
    ]);
    assert_eq!(json(&o)["identical"], true);

    // A doctored log (a finding changed, the recorded answers not) does not replay.
    let text = fs::read_to_string(&audit)
        .unwrap()
        .replace("the mesh is frozen until", "the mesh is thawed until");
    let doctored = dir.join("doctored.jsonl");
    fs::write(&doctored, text).unwrap();
    let o = meshup(&[
        "policy",
        "replay",
        "--audit-log",
        doctored.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("MISMATCH"), "{}", stdout(&o));
    assert!(stderr(&o).contains("differ from the audit log"));
}

#[test]
fn bad_input_is_exit_2() {
    let dir = scratch("cli-bad");
    let bad = dir.join("bad.yaml");
    fs::write(&bad, "policies:\n  - source: ./x.wasm\n").unwrap();
    let o = meshup(&["--policy-config", bad.to_str().unwrap(), "policy", "list"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("bad.yaml") && stderr(&o).contains("sha256 is required"),
        "{}",
        stderr(&o)
    );

    let ctx = dir.join("ctx.json");
    fs::write(&ctx, r#"{"phase": "sometime"}"#).unwrap();
    let o = meshup(&[
        "policy",
        "test",
        "builtin:skew",
        "--context",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("ctx.json"), "{}", stderr(&o));

    let o = meshup(&["policy", "replay"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--audit-log"));
}
