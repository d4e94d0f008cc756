//! The conventions a kubectl user expects: `meshup version`, shell completions, a manual
//! page, and `kubectl meshup …` through kubectl's plugin lookup.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

#[test]
fn version_names_the_client_its_wit_package_and_each_builtin_policy() {
    let doc = run(&["version", "--client", "-o", "json"], None);
    doc.expect(0);
    let doc = doc.json();
    assert_eq!(doc["client"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["wit"], "meshup:policy@0.3.0");
    let policies = doc["builtin_policies"].as_array().unwrap();
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"skew") && names.contains(&"pdb"),
        "{names:?}"
    );
    for p in policies {
        let digest = p["sha256"].as_str().unwrap();
        assert!(
            digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()),
            "{p}"
        );
    }
    // The digests are those `meshup policy list` pins.
    let listed = run(&["policy", "list", "-o", "json"], None);
    listed.expect(0);
    let text = listed.stdout.clone();
    for p in policies {
        assert!(
            text.contains(p["sha256"].as_str().unwrap()),
            "{p} not in {text}"
        );
    }
    assert!(
        doc.get("control_plane").is_none(),
        "--client asks no cluster"
    );
}

#[test]
fn version_with_a_cluster_names_the_running_control_plane() {
    let sim = Sim::start();
    let empty = sim.meshup(&["version", "-o", "json"]);
    empty.expect(0);
    assert_eq!(empty.json()["kubernetes"], KUBERNETES_VERSION);
    assert!(empty.json().get("control_plane").is_none());
    install(&sim, "istio-1.7.8", &[]);
    let doc = sim.meshup(&["version", "-o", "json"]);
    doc.expect(0);
    assert_eq!(doc.json()["control_plane"], "1.7.8");
    let text = sim.meshup(&["version"]);
    assert!(
        text.stdout.contains("control plane: 1.7.8"),
        "{}",
        text.stdout
    );
}

#[test]
fn completions_and_the_manual_come_from_the_flags() {
    let bash = run(&["completion", "bash"], None);
    bash.expect(0);
    assert!(bash.stdout.contains("_meshup()"), "{}", bash.stdout);
    for sub in [
        "precheck",
        "upgrade",
        "rollback",
        "--charts",
        "--readiness-timeout",
    ] {
        assert!(bash.stdout.contains(sub), "bash completion lacks {sub}");
    }
    for shell in ["zsh", "fish"] {
        let out = run(&["completion", shell], None);
        out.expect(0);
        assert!(out.stdout.contains("precheck"), "{shell}: {}", out.stdout);
    }
    let bad = run(&["completion", "tcsh"], None);
    bad.expect(2);
    let man = run(&["man"], None);
    man.expect(0);
    assert!(man.stdout.contains(".TH meshup 1"), "{}", man.stdout);
    assert!(man.stdout.contains("precheck"), "{}", man.stdout);
}

/// Installed as `kubectl-meshup` on PATH, kubectl finds it: `kubectl meshup version`.
#[test]
fn kubectl_runs_it_as_a_plugin() {
    if !has_kubectl() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("kubectl is needed to test the plugin under CI=true");
        }
        println!("SKIPPED: kubectl plugin: kubectl is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-meshup");
    std::os::unix::fs::symlink(
        std::path::Path::new(meshup_bin()).canonicalize().unwrap(),
        &plugin,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let listed = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("kubectl-meshup"),
        "{listed:?}"
    );
    let out = Command::new("kubectl")
        .args(["meshup", "version", "--client", "-o", "json"])
        .env("PATH", &path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["wit"], "meshup:policy@0.3.0");
}

/// `meshup … -o json | head`: a reader that stops early ends the output quietly, as it does
/// for kubectl, instead of a panic about a broken pipe.
#[test]
fn json_to_a_closed_pipe_is_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshup"))
        .args(["version", "--client", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before meshup writes (it starts in milliseconds; loading the
    // policies' digests takes longer).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
