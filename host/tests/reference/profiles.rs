//! Each bundle's expanded profiles against Istio's own: `../shared/reference/istio-1.X/
//! profiles/` holds the release's `manifests/profiles/*.yaml`, and istioctl of that release
//! merges a named profile over `default.yaml`. The merge is written here again, from
//! istioctl's code rather than from meshup's: 1.6 `OverlayYAML` (a JSON merge patch, RFC
//! 7386: every list replaced), 1.7+ `OverlayIOP` (a strategic merge whose only merge keys
//! are the gateway lists' `name`, `operator/pkg/util/merge_iop.go`). Field by field the
//! result must be the bundle's, but `hub` and `tag`, which are the release's.

use std::path::Path;

use meshup::release::bundle::Bundle;
use serde_json::{Value, json};

use super::{docs, reference_dir};
use meshup_real_tests::fs::copy_dir;

const RELEASES: [(&str, &str); 4] = [
    ("1.6.14", "1.6"),
    ("1.7.8", "1.7"),
    ("1.8.6", "1.8"),
    ("1.9.5", "1.9"),
];
const PROFILES: [&str; 3] = ["default", "demo", "minimal"];

/// RFC 7386, as istioctl 1.6's `jsonpatch.MergePatch`.
fn json_merge_patch(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    json_merge_patch(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// istioctl 1.7+'s `OverlayIOP`: maps merge recursively; `components.ingressGateways` and
/// `components.egressGateways` merge item by item on `name`; other lists are replaced.
fn overlay_iop(base: &mut Value, patch: &Value, path: &str) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(k) {
                    Some(slot) => overlay_iop(slot, v, &at),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(p))
            if path == "components.ingressGateways" || path == "components.egressGateways" =>
        {
            for item in p {
                match b.iter_mut().find(|x| x["name"] == item["name"]) {
                    Some(slot) => overlay_iop(slot, item, path),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Istio's expansion of `profile` for release `minor`, with the release's hub and tag.
fn istio_profile(dir: &Path, minor: &str, profile: &str, version: &str) -> Value {
    let spec = |name: &str| {
        let path = dir.join(format!("istio-{minor}/profiles/{name}.yaml"));
        docs(&path).remove(0)["spec"].clone()
    };
    let mut out = spec("default");
    if profile != "default" {
        if minor == "1.6" {
            json_merge_patch(&mut out, &spec(profile));
        } else {
            overlay_iop(&mut out, &spec(profile), "");
        }
    }
    out["hub"] = json!("docker.io/istio");
    out["tag"] = json!(version);
    out
}

/// Every field where two trees differ, as `path: istio X, bundle Y`.
fn differences(istio: &Value, bundle: &Value, path: &str, out: &mut Vec<String>) {
    match (istio, bundle) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let at = format!("{path}.{k}");
                let none = Value::Null;
                differences(
                    a.get(k).unwrap_or(&none),
                    b.get(k).unwrap_or(&none),
                    &at,
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: istio {a}, bundle {b}")),
    }
}

fn bundle_dir(version: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../bundles/istio-{version}"))
}

fn profile_differences(dir: &Path, bundle: &Bundle, minor: &str) -> Vec<String> {
    let version = bundle.version().to_string();
    let mut out = Vec::new();
    for profile in PROFILES {
        let want = istio_profile(dir, minor, profile, &version);
        let got = bundle.profile(profile).unwrap();
        let mut diffs = Vec::new();
        differences(&want, got, "", &mut diffs);
        out.extend(
            diffs
                .into_iter()
                .map(|d| format!("{version} {profile}: {d}")),
        );
    }
    out
}

#[test]
fn every_bundle_profile_is_istios_own_expansion() {
    let Some(dir) = reference_dir() else {
        return;
    };
    let mut errs = Vec::new();
    for (version, minor) in RELEASES {
        let bundle = Bundle::load(&bundle_dir(version)).unwrap();
        errs.extend(profile_differences(&dir, &bundle, minor));
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
}

/// The comparison sees one changed field: a bundle whose demo profile says 20m where
/// Istio's says 10m is reported at exactly that field.
#[test]
fn one_changed_field_is_reported() {
    let Some(dir) = reference_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("istio-1.8.6");
    copy_dir(&bundle_dir("1.8.6"), &copy);
    let demo = copy.join("profiles/demo.yaml");
    let text = std::fs::read_to_string(&demo).unwrap();
    let changed = text.replacen("cpu: 10m", "cpu: 20m", 1);
    assert_ne!(text, changed);
    std::fs::write(&demo, changed).unwrap();
    let bundle = Bundle::load(&copy).unwrap();
    let errs = profile_differences(&dir, &bundle, "1.8");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("1.8.6 demo: ."), "{}", errs[0]);
    assert!(
        errs[0].ends_with("cpu: istio \"10m\", bundle \"20m\""),
        "{}",
        errs[0]
    );
}
