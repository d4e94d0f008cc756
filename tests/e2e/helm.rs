//! An Istio that Helm installed: its releases found from Helm's own records (Secrets
//! `sh.helm.release.v1.*`, here the ones real Helm v4.3.2 wrote, and releases of Istio's
//! other charts made from them) and the control plane's Helm annotations; `status` and
//! `precheck` show them, a pending newest revision blocks with the command that resolves it,
//! and a hostile record is one clear error that names its Secret, with nothing written.

use std::io::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};

use meshup::installed::helm::record::{self, Stamp, Status};

use crate::common::*;

/// Four revisions of release `istiod` written by real Helm v4.3.2: 1 and 2 superseded, 3
/// deployed, 4 left `pending-upgrade` by a SIGKILL (`host/src/installed/helm/testdata`).
const REAL: &str = include_str!("../../host/src/installed/helm/testdata/istiod-helm-v4.3.2.json");

/// The control plane as Helm leaves it: Helm's label and annotations on istiod.
fn control_plane() -> String {
    let more = "
apiVersion: v1
kind: Namespace
metadata: {name: istio-ingress}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---";
    format!("{more}{}", istiod_seed("1.7.8", HELM_MARKS))
}

fn real(revision: u32) -> Value {
    let list: Value = serde_json::from_str(REAL).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["labels"]["version"].as_str() == Some(&revision.to_string()))
        .unwrap()
        .clone()
}

/// Revision 3 of the real record, re-made as revision `revision` of release `name` of chart
/// `chart` (`keywords` as given) in `namespace`, with `status`: encoded as Helm encodes it.
fn made(
    name: &str,
    chart: &str,
    keywords: Value,
    namespace: &str,
    revision: u32,
    status: Status,
) -> Value {
    let mut r = record::decode(&real(3)).unwrap();
    r.name = name.into();
    r.namespace = namespace.into();
    r.revision = revision;
    r.info.status = status;
    r.chart.0["metadata"]["name"] = json!(chart);
    r.chart.0["metadata"]["keywords"] = keywords;
    r.chart.0["metadata"]["version"] = json!("1.30.3");
    r.chart.0["metadata"]["appVersion"] = json!("1.30.3");
    record::encode(&r, Stamp::Created(1_796_471_300))
}

/// The control plane and `records`, as one seed (the records as JSON documents).
fn seed(records: &[Value]) -> String {
    let mut seed = control_plane();
    for r in records {
        seed.push_str("---\n");
        seed.push_str(&r.to_string());
        seed.push('\n');
    }
    seed
}

/// istio-base (chart `base`) beside istiod, a gateway release in its own namespace, and an
/// application's release that is not Istio's.
fn other_releases() -> Vec<Value> {
    vec![
        made(
            "istio-base",
            "base",
            json!(["istio"]),
            "istio-system",
            1,
            Status::Deployed,
        ),
        made(
            "istio-ingress",
            "gateway",
            json!(["istio", "gateways"]),
            "istio-ingress",
            1,
            Status::Superseded,
        ),
        made(
            "istio-ingress",
            "gateway",
            json!(["istio", "gateways"]),
            "istio-ingress",
            2,
            Status::Deployed,
        ),
        made("cart", "cart", json!(["shop"]), "shop", 1, Status::Deployed),
    ]
}

fn started(records: &[Value]) -> Sim {
    let sim = Sim::start_with(Some(&seed(records)), &[]);
    wait_ready(&sim, "istio-system", "istiod", 1);
    sim.clear_requests();
    sim
}

/// (namespace/name, chart, app version, revision, status) of each release in a document.
fn releases(doc: &Value) -> Vec<(String, String, String, u64, String)> {
    doc["helm_releases"]
        .as_array()
        .unwrap_or_else(|| panic!("no helm_releases: {doc}"))
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                format!(
                    "{}-{}",
                    r["chart"].as_str().unwrap(),
                    r["chart_version"].as_str().unwrap()
                ),
                r["app_version"].as_str().unwrap().to_string(),
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn row(
    ns_name: &str,
    chart: &str,
    app: &str,
    revision: u64,
    status: &str,
) -> (String, String, String, u64, String) {
    (
        ns_name.into(),
        chart.into(),
        app.into(),
        revision,
        status.into(),
    )
}

#[test]
fn status_shows_the_helm_releases_of_the_install() {
    let mut records = vec![real(1), real(2), real(3)];
    records.extend(other_releases());
    let sim = started(&records);

    let run = sim.meshup(&["status", "-o", "json"]);
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["install_method"], "helm", "{doc}");
    assert_eq!(
        releases(&doc),
        vec![
            row(
                "istio-ingress/istio-ingress",
                "gateway-1.30.3",
                "1.30.3",
                2,
                "deployed"
            ),
            row(
                "istio-system/istio-base",
                "base-1.30.3",
                "1.30.3",
                1,
                "deployed"
            ),
            row(
                "istio-system/istiod",
                "istiod-1.31.0-rc.0",
                "1.31.0-rc.0",
                3,
                "deployed"
            ),
        ],
        "the application's release `cart` is not Istio's: {doc}"
    );
    let istiod = &doc["helm_releases"][2];
    assert_eq!(istiod["apply_method"], "ssa");
    assert_eq!(istiod["last_deployed"], 3);
    assert_eq!(
        istiod["named_by"],
        json!(["Deployment istio-system/istiod"])
    );

    let text = sim.meshup(&["status"]);
    text.expect(0);
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("istiod-1.31.0-rc.0"))
        .unwrap_or_else(|| panic!("no istiod release line:\n{}", text.stdout));
    for word in [
        "istio-system",
        "istiod",
        "1.31.0-rc.0",
        "3",
        "deployed",
        "server-side",
    ] {
        assert!(line.contains(word), "{word} in {line}");
    }
    assert!(text.stdout.contains("gateway-1.30.3"), "{}", text.stdout);
    assert!(!text.stdout.contains("cart-"), "{}", text.stdout);
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

#[test]
fn a_pending_newest_revision_blocks_the_precheck_with_the_helm_command() {
    // istiod's revision 4 as real Helm left it when killed mid-upgrade, and a gateway whose
    // first install was interrupted.
    let mut records = vec![real(1), real(2), real(3), real(4)];
    records.push(made(
        "istio-ingress",
        "gateway",
        json!(["istio"]),
        "istio-ingress",
        1,
        Status::PendingInstall,
    ));
    let sim = started(&records);

    let run = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"]);
    run.expect(3);
    let doc = run.json();
    assert_eq!(doc["blocked"], true);
    assert!(
        releases(&doc).contains(&row(
            "istio-system/istiod",
            "istiod-1.31.0-rc.0",
            "1.31.0-rc.0",
            4,
            "pending-upgrade"
        )),
        "{doc}"
    );
    let pending: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "helm.pending")
        .collect();
    assert_eq!(pending.len(), 2, "{doc}");
    let istiod = pending
        .iter()
        .find(|f| f["subject"] == "istio-system/istiod")
        .unwrap();
    assert_eq!(istiod["severity"], "error");
    assert!(
        istiod["remediation"]
            .as_str()
            .unwrap()
            .contains("helm rollback istiod 3 -n istio-system"),
        "{istiod}"
    );
    assert!(
        istiod["message"]
            .as_str()
            .unwrap()
            .contains("pending-upgrade")
            && istiod["message"].as_str().unwrap().contains("interrupted")
            && !istiod["message"].as_str().unwrap().contains("  "),
        "{istiod}"
    );
    let gateway = pending
        .iter()
        .find(|f| f["subject"] == "istio-ingress/istio-ingress")
        .unwrap();
    assert!(
        gateway["remediation"]
            .as_str()
            .unwrap()
            .contains("helm uninstall istio-ingress -n istio-ingress"),
        "{gateway}"
    );

    // For people: the releases in the plan, the finding, and the refusal naming it.
    let text = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6")]);
    text.expect(3);
    let all = text.all();
    assert!(all.contains("pending-upgrade (last deployed: 3)"), "{all}");
    assert!(all.contains("helm.pending"), "{all}");
    assert!(
        all.contains("helm rollback istiod 3 -n istio-system"),
        "{all}"
    );
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

/// `secret` holding `payload` as Helm's bytes (before Helm's base64, and the API's).
fn holding(secret: &Value, payload: &[u8]) -> Value {
    let api = base64::engine::general_purpose::STANDARD;
    let mut s = secret.clone();
    s["data"]["release"] = Value::String(api.encode(api.encode(payload)));
    s
}

#[test]
fn a_gzip_bomb_in_the_newest_record_is_refused_by_name_and_nothing_is_written() {
    // Revision 4 of istiod: a small gzip that inflates past meshup's bound of the release
    // JSON (a real record of Istio is a few MiB).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..(record::MAX_JSON_BYTES / zeros.len() + 8) {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = holding(&real(4), &gz.finish().unwrap());
    assert!(bomb["data"]["release"].as_str().unwrap().len() < 1024 * 1024);
    let sim = started(&[real(1), real(2), real(3), bomb.clone()]);

    let secret = "Secret istio-system/sh.helm.release.v1.istiod.v4";
    for args in [
        vec!["status"],
        vec!["status", "-o", "json"],
        vec!["precheck", "--bundle", &b("istio-1.8.6")],
        vec!["upgrade", "--bundle", &b("istio-1.8.6"), "-y"],
    ] {
        let run = sim.meshup(&args);
        run.expect(2);
        assert!(run.stderr.contains(secret), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("decompresses to more than"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.all().contains("panicked"), "{}", run.all());
        assert_eq!(
            run.stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "one error: {}",
            run.stderr
        );
    }
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    // The record is still there as it was: nothing rewrote or removed it.
    let stored = sim.get("/api/v1/namespaces/istio-system/secrets/sh.helm.release.v1.istiod.v4");
    assert_eq!(stored["data"], bomb["data"]);
}

#[test]
fn an_unreadable_record_of_another_release_is_skipped_with_a_note() {
    // Not gzip and not JSON, in an application's release the control plane does not name:
    // `helm list` skips it, and so does meshup, saying so.
    let junk = holding(
        &made("cart", "cart", json!([]), "shop", 1, Status::Deployed),
        b"not a release",
    );
    let sim = started(&[real(1), real(2), real(3), junk]);
    let run = sim.meshup(&["status", "-o", "json"]);
    run.expect(0);
    let doc = run.json();
    assert_eq!(releases(&doc).len(), 1, "{doc}");
    let notes = doc["helm_notes"].to_string();
    assert!(
        notes.contains("Secret shop/sh.helm.release.v1.cart.v1"),
        "{doc}"
    );
}
