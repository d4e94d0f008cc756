//! Bad input: one clear error, the documented exit code, nothing changed.

use crate::common::*;

#[test]
fn bad_bundle_bad_set_bad_kubeconfig_unreachable_cluster() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.clear_requests();

    let dir = sim.dir.path().join("broken-bundle");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bundle.yaml"),
        "apiVersion: meshup.dev/v1\nkind: Bundle\nname: istio\nversion: not-a-version\n",
    )
    .unwrap();
    let r = sim.meshup(&["upgrade", "--bundle", dir.to_str().unwrap(), "-y"]);
    r.expect(2);
    assert!(
        r.stderr.contains("bundle.yaml:4"),
        "points at the line: {}",
        r.stderr
    );
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error: {}",
        r.stderr
    );

    let r = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "--set",
        "components.pilot.k8s.replicas=3",
        "-y",
    ]);
    r.expect(2);
    assert!(
        r.stderr
            .contains("unknown value `components.pilot.k8s.replicas`")
            && r.stderr
                .contains("did you mean `components.pilot.k8s.replicaCount`"),
        "{}",
        r.stderr
    );
    let r = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "--set",
        "revision=1-8-6",
        "-y",
    ]);
    r.expect(2);
    assert!(r.stderr.contains("in place"), "{}", r.stderr);
    let helm_style = sim.dir.path().join("values.yaml");
    std::fs::write(&helm_style, "pilot:\n  traceSampling: 5.0\n").unwrap();
    let r = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-f",
        helm_style.to_str().unwrap(),
        "-y",
    ]);
    r.expect(2);
    assert!(r.stderr.contains("not an IstioOperator"), "{}", r.stderr);
    let r = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "--set",
        "components.pilot.k8s.replicaCount=lots",
        "-y",
    ]);
    r.expect(2);
    assert!(r.stderr.contains("must be a number"), "{}", r.stderr);

    let bad_kc = sim.dir.path().join("bad-kubeconfig");
    std::fs::write(&bad_kc, "this: [is not a kubeconfig").unwrap();
    let r = run(
        &[
            "--kubeconfig",
            bad_kc.to_str().unwrap(),
            "upgrade",
            "--bundle",
            &b("istio-1.8.6"),
            "-y",
        ],
        None,
    );
    r.expect(2);
    assert!(r.stderr.contains("kubeconfig"), "{}", r.stderr);

    let dead_kc = sim.dir.path().join("dead-kubeconfig");
    let text = std::fs::read_to_string(&sim.kubeconfig)
        .unwrap()
        .replace(&sim.addr, "127.0.0.1:9");
    std::fs::write(&dead_kc, text).unwrap();
    let r = run(
        &[
            "--kubeconfig",
            dead_kc.to_str().unwrap(),
            "upgrade",
            "--bundle",
            &b("istio-1.8.6"),
            "-y",
        ],
        None,
    );
    r.expect(1);
    assert!(
        r.stderr.contains("cannot reach the cluster"),
        "{}",
        r.stderr
    );

    let r = sim.meshup(&["upgrade", "--bundel", "x"]);
    r.expect(2);

    assert!(
        sim.mutations().is_empty(),
        "bad input changed the cluster: {:?}",
        sim.mutations()
    );
}

#[test]
fn template_is_reproducible_and_needs_no_cluster() {
    let one = run(
        &[
            "template",
            "--bundle",
            &b("istio-1.8.6"),
            "--set",
            "components.pilot.k8s.replicaCount=2",
        ],
        None,
    );
    one.expect(0);
    let two = run(
        &[
            "template",
            "--bundle",
            &b("istio-1.8.6"),
            "--set",
            "components.pilot.k8s.replicaCount=2",
        ],
        None,
    );
    assert_eq!(one.stdout, two.stdout);
    assert!(one.stdout.contains("# Source: istiod/deployment.yaml"));
}

/// What an istioctl user has works as it is: IstioOperator files (merged in order) and
/// istioctl's --set paths, including legacy `values.*` spellings and gateways by name.
#[test]
fn istioctl_inputs_are_taken_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("iop.yaml");
    std::fs::write(
        &first,
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata:\n  namespace: istio-system\n\
         spec:\n  profile: default\n  hub: example.com/istio\n  meshConfig:\n    accessLogFile: /dev/stdout\n\
         \x20 components:\n    egressGateways:\n    - name: istio-egressgateway\n      enabled: true\n\
         \x20 values:\n    pilot:\n      traceSampling: 2.0\n",
    )
    .unwrap();
    let second = dir.path().join("more.yaml");
    std::fs::write(
        &second,
        "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  values:\n    pilot:\n      traceSampling: 5.0\n",
    )
    .unwrap();
    let r = run(
        &[
            "template",
            "--bundle",
            &b("istio-1.8.6"),
            "-f",
            first.to_str().unwrap(),
            "-f",
            second.to_str().unwrap(),
            "--set",
            "values.pilot.replicaCount=2",
            "--set",
            "tag=1.8.6-distroless",
            "--set",
            "components.ingressGateways[name:istio-ingressgateway].k8s.replicaCount=3",
            "--set",
            "components.pilot.k8s.serviceAnnotations.team=mesh",
        ],
        None,
    );
    r.expect(0);
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&r.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} not rendered"))
    };
    let istiod = find("Deployment", "istiod");
    assert_eq!(istiod["spec"]["replicas"], 2);
    let c = &istiod["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "example.com/istio/pilot:1.8.6-distroless");
    let sampling = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PILOT_TRACE_SAMPLING")
        .unwrap();
    assert_eq!(sampling["value"], "5.0", "the later -f wins");
    assert_eq!(
        find("Deployment", "istio-ingressgateway")["spec"]["replicas"],
        3
    );
    find("Deployment", "istio-egressgateway");
    assert_eq!(
        find("Service", "istiod")["metadata"]["annotations"]["team"],
        "mesh"
    );
    let mesh = find("ConfigMap", "istio")["data"]["mesh"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(mesh.contains("/dev/stdout"), "{mesh}");
}
