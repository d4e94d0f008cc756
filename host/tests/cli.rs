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
    assert!(imports.contains(&"meshup:policy/cluster@0.3.0"));
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

    // Built against the previous WIT package: refused, naming both versions (exit 2).
    let old = guest("old-wit");
    let o = meshup(&["policy", "inspect", old.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(
        e.contains("refused: built for meshup:policy@0.2.0; this meshup speaks meshup:policy@0.3.0: rebuild it against meshup-policy-sdk 0.3"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "one clear message: {e}");
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

    // Replay all four (each run wrote a header, then its record), then one line.
    let o = meshup(&["policy", "replay", "--audit-log", a]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches("identical").count(), 4, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("hash chain intact: 4 run(s)"),
        "{}",
        stdout(&o)
    );
    let o = meshup(&[
        "policy",
        "replay",
        "--audit-log",
        a,
        "--line",
        "6",
        "-o",
        "json",
    ]);
    assert_eq!(json(&o)["identical"], true, "{}", stderr(&o));
    assert_eq!(json(&o)["replayed"][0]["policy"], "skew");

    // A doctored log (a finding changed, the recorded answers not) breaks the chain …
    let text = fs::read_to_string(&audit)
        .unwrap()
        .replace("the mesh is frozen until", "the mesh is thawed until");
    let doctored = dir.join("doctored.jsonl");
    fs::write(&doctored, &text).unwrap();
    let o = meshup(&[
        "policy",
        "replay",
        "--audit-log",
        doctored.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains("line 3: its prev does not match the sha256 of line 2"),
        "{}",
        stderr(&o)
    );

    // … and one whose chain was recomputed after the edit still does not replay.
    fs::write(&doctored, rechain(&text)).unwrap();
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

/// The log with every `prev` recomputed (what a careful forger would do).
fn rechain(text: &str) -> String {
    let mut prev: Option<String> = None;
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        v["prev"] = prev.clone().map(Value::from).unwrap_or(Value::Null);
        let line = v.to_string();
        prev = Some(meshup::policy::cache::sha256_hex(line.as_bytes()));
        out += &line;
        out.push('\n');
    }
    out
}

#[test]
fn audit_chain_catches_edited_removed_and_reordered_lines() {
    let dir = scratch("cli-chain");
    let ctx = write_context(&dir, |_| {});
    let log = dir.join("audit.jsonl");
    for target in ["builtin:skew", "builtin:revision", "builtin:webhooks"] {
        let o = policy_test(
            Path::new(target),
            &ctx,
            &["--audit-log", log.to_str().unwrap()],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let lines: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 6);
    let replay = |name: &str, lines: &[String]| {
        let p = dir.join(name);
        fs::write(&p, lines.join("\n") + "\n").unwrap();
        meshup(&["policy", "replay", "--audit-log", p.to_str().unwrap()])
    };
    let o = replay("intact.jsonl", &lines);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("hash chain intact: 3 run(s)"));

    let broken = |o: &Output, line: usize| {
        assert_eq!(code(o), 3, "{}{}", stdout(o), stderr(o));
        assert!(
            stderr(o).contains(&format!("is not intact: line {line}:")),
            "{}",
            stderr(o)
        );
        assert!(!stdout(o).contains("identical"), "nothing is replayed");
    };
    let mut edited = lines.clone();
    edited[1] = edited[1].replace("\"phase\":\"precheck\"", "\"phase\":\"pre-upgrade\"");
    assert_ne!(edited[1], lines[1]);
    broken(&replay("edited.jsonl", &edited), 3);

    let mut removed = lines.clone();
    removed.remove(3);
    broken(&replay("removed.jsonl", &removed), 4);

    let mut reordered = lines.clone();
    reordered.swap(1, 3);
    broken(&replay("reordered.jsonl", &reordered), 2);

    // A log without the header of a chained log (older meshup, or its head cut off).
    let o = replay("headless.jsonl", &lines[1..]);
    broken(&o, 1);
    assert!(stderr(&o).contains("not a chain header"), "{}", stderr(&o));
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

/// `meshup policy test TARGET --context CTX EXTRA…`.
fn policy_test(target: &Path, ctx: &str, extra: &[&str]) -> Output {
    let mut args = vec!["policy", "test", target.to_str().unwrap(), "--context", ctx];
    args.extend_from_slice(extra);
    meshup(&args)
}

fn assert_inert(what: &str, o: &Output) {
    common::assert_inert(what, &o.stdout, &o.stderr);
}

#[test]
fn forged_policy_text_reaches_the_terminal_escaped_and_attributed() {
    let dir = scratch("cli-forge");
    let ctx = write_context(&dir, |_| {});
    let forge = guest("forge");
    let f = forge.to_str().unwrap();

    let o = policy_test(&forge, &ctx, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_inert("policy test", &o);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("policy forge ({})", origin("forge")))
            && out.contains("(file forge.wasm sha256:"),
        "{out}"
    );
    assert!(
        out.contains("nothing to see\\x1b[2K\\r\\x1b[32mprecheck passed"),
        "{out}"
    );
    assert!(
        out.contains("\\x1b]0;meshup: all checks passed\\x07"),
        "{out}"
    );
    assert!(out.contains("\\u{202e}deliver"), "{out}");
    assert!(
        out.contains("           | precheck passed: upgrade can proceed"),
        "{out}"
    );

    // JSON keeps the exact text, and says where the policy comes from.
    let o = policy_test(&forge, &ctx, &["-o", "json"]);
    assert_inert("policy test -o json", &o);
    let v = json(&o);
    let finding = &v["evaluation"]["findings"][0];
    assert!(finding["message"].as_str().unwrap().contains(
        "\x1b[32mprecheck passed: upgrade can proceed\x1b[0m\x1b]0;meshup: all checks passed\x07\u{202e}deliver"
    ));
    assert_eq!(finding["source"], origin("forge"));

    let o = meshup(&["policy", "inspect", f]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_inert("policy inspect", &o);
    assert!(
        stdout(&o).contains("name:     forge 9.9.9\\x1b[2K"),
        "{}",
        stdout(&o)
    );

    let cfg = dir.join("p.yaml");
    fs::write(
        &cfg,
        format!(
            "include_defaults: false\npolicies:\n  - source: {f}\n    sha256: {}\n",
            digest(&forge)
        ),
    )
    .unwrap();
    let o = meshup(&["--policy-config", cfg.to_str().unwrap(), "policy", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_inert("policy list", &o);

    // Replay prints the policy's name from the log: escaped too.
    let log = dir.join("audit.jsonl");
    let l = log.to_str().unwrap();
    policy_test(&forge, &ctx, &["--audit-log", l]);
    let o = meshup(&["policy", "replay", "--audit-log", l]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_inert("policy replay", &o);
}

#[test]
fn flooding_policies_are_bounded_and_foreign_codes_fail_the_policy() {
    let dir = scratch("cli-flood");
    let ctx = write_context(&dir, |_| {});
    let bigmsg = guest("bigmsg");

    let o = policy_test(&bigmsg, &ctx, &[]);
    let bytes = o.stdout.len() + o.stderr.len();
    eprintln!("50 MiB message via `meshup policy test`: {bytes} bytes of output");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(bytes < 8 * 1024, "{bytes} bytes of output");
    assert!(
        stdout(&o).contains("…(truncated, 52428800 bytes)"),
        "{}",
        stdout(&o)
    );
    let o = policy_test(&bigmsg, &ctx, &["-o", "json"]);
    eprintln!(
        "50 MiB message via `meshup policy test -o json`: {} bytes",
        o.stdout.len()
    );
    assert!(o.stdout.len() < 8 * 1024);
    assert_eq!(json(&o)["evaluation"]["outcome"], "ok");

    let o = policy_test(&guest("bigcode"), &ctx, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let bytes = o.stdout.len() + o.stderr.len();
    assert!(bytes < 4 * 1024, "{bytes} bytes: {}", stdout(&o));
    assert!(stdout(&o).contains("policy.failed") && stdout(&o).contains("policy bigcode"));
    assert!(stdout(&o).contains("(truncated, 102400 bytes)"));

    let o = policy_test(&guest("foreign"), &ctx, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("policy.failed")
            && out.contains("policy foreign")
            && out.contains("`skew.too-far`"),
        "{out}"
    );
    assert!(
        out.contains("foreign.own"),
        "its own finding is kept: {out}"
    );
}

#[test]
fn policy_list_shows_a_name_taken_only_by_replacing_the_builtin() {
    let dir = scratch("cli-impostor");
    let impostor = guest("impostor");
    let cfg = dir.join("p.yaml");
    let list = |extra: &str| {
        fs::write(
            &cfg,
            format!(
                "policies:\n  - source: {}\n    sha256: {}\n{extra}",
                impostor.display(),
                digest(&impostor)
            ),
        )
        .unwrap();
        meshup(&["--policy-config", cfg.to_str().unwrap(), "policy", "list"])
    };

    let o = list("");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let refused = stdout(&o)
        .lines()
        .find(|l| l.contains("impostor.wasm"))
        .unwrap()
        .to_string();
    assert!(
        refused.contains("REFUSED: its name `skew` is already taken by builtin:skew")
            && refused.contains("replaces: builtin:skew"),
        "{refused}"
    );
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("skew "))
            .count(),
        1,
        "{}",
        stdout(&o)
    );

    let o = list("    replaces: builtin:skew\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "note: builtin:skew replaced by skew ({})",
            origin("impostor")
        )),
        "{}",
        stdout(&o)
    );
    let o = meshup(&[
        "--policy-config",
        cfg.to_str().unwrap(),
        "policy",
        "list",
        "-o",
        "json",
    ]);
    let v = json(&o);
    let skews: Vec<&Value> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "skew")
        .collect();
    assert_eq!(skews.len(), 1);
    assert_eq!(skews[0]["replaces"], "builtin:skew");
    assert_eq!(skews[0]["version"], "9.9.9");
}
