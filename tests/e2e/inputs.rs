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
        "pilot.replicas=3",
        "-y",
    ]);
    r.expect(2);
    assert!(
        r.stderr.contains("unknown value `pilot.replicas`") && r.stderr.contains("replicaCount"),
        "{}",
        r.stderr
    );
    let r = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "--set",
        "pilot.replicaCount=lots",
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
            "pilot.replicaCount=2",
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
            "pilot.replicaCount=2",
        ],
        None,
    );
    assert_eq!(one.stdout, two.stdout);
    assert!(one.stdout.contains("# Source: istiod/deployment.yaml"));
}
