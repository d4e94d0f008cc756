//! Mutating webhooks: which webhooks a request goes to (rules, namespaceSelector,
//! objectSelector, decided from the stored configurations) and what a simulated backend
//! adds, with a definition that belongs to no real product.

mod common;

use common::{ahttp, start_with};
use meshup_sim::{Sim, SimConfig, WebhookBackends};
use serde_json::{Value, json};
use std::time::Duration;

const J: &str = "application/json";

/// An agent injector: adds an `agent` container at the agent server's own version, a
/// volume, a label and (unless set) an owner annotation; pods annotated
/// `example.com/agent: "off"` opt out.
const BACKENDS: &str = r#"
backends:
  - webhooks: [agent-injector.example.com]
    vars:
      version: {container: server, imageTag: true}
      tier: {container: server, env: TIER, default: standard, emptyIf: none}
    skipWhen:
      annotations: {example.com/agent: "off"}
    add:
      metadata:
        labels: {example.com/agent: "${version}", example.com/tier: "${tier}"}
      spec:
        containers: [{name: agent, image: "example.com/agent:${version}", args: ["--pod=$(POD_NAME)"]}]
        volumes: [{name: agent-socket, emptyDir: {}}]
    addIfAbsent:
      metadata:
        annotations: {example.com/owner: platform}
  # Serves the webhook that only sees UPDATEs: never called on create.
  - service: agent-server
    webhooks: [updates.example.com]
    add: {metadata: {labels: {example.com/updated: "yes"}}}
"#;

async fn post(sim: &Sim, path: &str, obj: Value) -> Value {
    let (code, v) = ahttp(sim, "POST", path, Some((J, &obj.to_string()))).await;
    assert_eq!(code, 201, "POST {path}: {v}");
    v
}

async fn put(sim: &Sim, path: &str, obj: Value) {
    let (code, v) = ahttp(sim, "PUT", path, Some((J, &obj.to_string()))).await;
    assert_eq!(code, 200, "PUT {path}: {v}");
}

async fn namespace(sim: &Sim, name: &str, labels: Value) {
    post(sim, "/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})).await;
}

async fn pod(sim: &Sim, ns: &str, meta: Value) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}});
    post(sim, &format!("/api/v1/namespaces/{ns}/pods"), pod).await
}

fn containers(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap(),
                c["image"].as_str().unwrap()
            )
        })
        .collect()
}

fn server(version: &str, env: Value) -> Value {
    server_image(&format!("example.com/agent-server:{version}"), env)
}

fn server_image(image: &str, env: Value) -> Value {
    let labels = json!({"app": "agent-server"});
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "agent-server", "namespace": "platform"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "server", "image": image, "env": env}]}}}})
}

/// Namespaces `platform` (the agent server at 2.1 with `env`, and its Service) and `apps`
/// (agents on).
async fn agent_server(sim: &Sim, env: Value) {
    namespace(sim, "platform", json!({})).await;
    namespace(sim, "apps", json!({"example.com/agents": "on"})).await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "agent-server"},
        "spec": {"selector": {"app": "agent-server"}, "ports": [{"port": 443}]}});
    post(sim, "/api/v1/namespaces/platform/services", service).await;
    post(
        sim,
        "/apis/apps/v1/namespaces/platform/deployments",
        server("2.1", env),
    )
    .await;
}

const SERVER: &str = "/apis/apps/v1/namespaces/platform/deployments/agent-server";
const CONFIGS: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

/// The configuration: agent injection for pods in namespaces labelled
/// `example.com/agents in (on, yes)`, except pods labelled `example.com/no-agent`; a
/// second webhook for pod UPDATEs only.
fn configuration() -> Value {
    let service =
        json!({"service": {"name": "agent-server", "namespace": "platform", "path": "/mutate"}});
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
    "metadata": {"name": "agent-injector"},
    "webhooks": [
        {"name": "agent-injector.example.com", "clientConfig": service, "sideEffects": "None",
         "admissionReviewVersions": ["v1"],
         "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}],
         "namespaceSelector": {"matchExpressions": [{"key": "example.com/agents", "operator": "In", "values": ["on", "yes"]}]},
         "objectSelector": {"matchExpressions": [{"key": "example.com/no-agent", "operator": "DoesNotExist"}]}},
        {"name": "updates.example.com", "clientConfig": service, "sideEffects": "None",
         "admissionReviewVersions": ["v1"],
         "rules": [{"operations": ["UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_chosen_by_their_rules_and_selectors_and_mutate_as_defined() {
    let sim = start_with(SimConfig {
        ready_delay: Duration::from_millis(50),
        webhook_backends: WebhookBackends::from_yaml(BACKENDS).unwrap(),
        ..SimConfig::default()
    })
    .await;
    agent_server(&sim, json!([{"name": "TIER", "value": "gold"}])).await;
    namespace(&sim, "legacy", json!({"example.com/agents": "off"})).await;

    // created before the webhook configuration exists: not mutated
    let early = pod(&sim, "apps", json!({"name": "early"})).await;
    assert_eq!(containers(&early), ["app=example.com/app:1"]);

    post(&sim, CONFIGS, configuration()).await;
    let p = pod(
        &sim,
        "apps",
        json!({"name": "p", "annotations": {"example.com/owner": "team-a"}}),
    )
    .await;
    assert_eq!(
        containers(&p),
        ["app=example.com/app:1", "agent=example.com/agent:2.1"]
    );
    assert_eq!(
        p["spec"]["containers"][1]["args"],
        json!(["--pod=$(POD_NAME)"])
    );
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "agent-socket", "emptyDir": {}}])
    );
    assert_eq!(
        p["metadata"]["labels"],
        json!({"example.com/agent": "2.1", "example.com/tier": "gold"})
    );
    assert_eq!(
        p["metadata"]["annotations"]["example.com/owner"], "team-a",
        "addIfAbsent keeps a value"
    );
    // not selected: namespace label value, objectSelector, the backend's own opt-out
    for (ns, meta) in [
        ("legacy", json!({"name": "l"})),
        (
            "apps",
            json!({"name": "o", "labels": {"example.com/no-agent": "1"}}),
        ),
        (
            "apps",
            json!({"name": "a", "annotations": {"example.com/agent": "off"}}),
        ),
    ] {
        let p = pod(&sim, ns, meta).await;
        assert_eq!(containers(&p), ["app=example.com/app:1"], "{p}");
        assert!(p["metadata"]["labels"]["example.com/updated"].is_null());
    }
    // not a pod: the rules do not match
    let cm = post(
        &sim,
        "/api/v1/namespaces/apps/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    )
    .await;
    assert!(cm["metadata"]["labels"].is_null(), "{cm}");
    // dry-run creates are mutated too (the webhook has no side effects)
    let (_, dry) = ahttp(&sim, "POST", "/api/v1/namespaces/apps/pods?dryRun=All", Some((J, &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "dry"}, "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}}).to_string()))).await;
    assert_eq!(containers(&dry).len(), 2, "{dry}");

    // the server's new version (its Deployment's template) is what later pods get;
    // without TIER, the default; running pods keep theirs
    put(&sim, SERVER, server("2.2", json!([]))).await;
    let q = pod(&sim, "apps", json!({"name": "q"})).await;
    assert_eq!(
        containers(&q),
        ["app=example.com/app:1", "agent=example.com/agent:2.2"]
    );
    assert_eq!(q["metadata"]["labels"]["example.com/tier"], "standard");
    assert_eq!(
        q["metadata"]["annotations"]["example.com/owner"],
        "platform"
    );
    let (_, p) = ahttp(&sim, "GET", "/api/v1/namespaces/apps/pods/p", None).await;
    assert_eq!(containers(&p)[1], "agent=example.com/agent:2.1");
    // a fact that comes out empty adds no label
    put(
        &sim,
        SERVER,
        server("2.3", json!([{"name": "TIER", "value": "none"}])),
    )
    .await;
    let r = pod(&sim, "apps", json!({"name": "r"})).await;
    assert_eq!(r["metadata"]["labels"], json!({"example.com/agent": "2.3"}));

    // the server's Service is gone: its facts cannot be read, the pod is admitted unchanged
    let (code, _) = ahttp(
        &sim,
        "DELETE",
        "/api/v1/namespaces/platform/services/agent-server",
        None,
    )
    .await;
    assert_eq!(code, 200);
    let s = pod(&sim, "apps", json!({"name": "s"})).await;
    assert_eq!(containers(&s), ["app=example.com/app:1"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_backends_a_webhook_configuration_changes_nothing() {
    let sim = start_with(SimConfig::default()).await;
    agent_server(&sim, json!([])).await;
    post(&sim, CONFIGS, configuration()).await;
    let p = pod(&sim, "apps", json!({"name": "p"})).await;
    assert_eq!(containers(&p), ["app=example.com/app:1"]);
    sim.shutdown().await;
}

#[test]
fn bad_backend_definitions_are_refused_with_where_and_what() {
    let err = |yaml: &str| WebhookBackends::from_yaml(yaml).unwrap_err().to_string();
    assert!(err("backends: [{add: {a: b}}]").contains("names neither `webhooks` nor `service`"),);
    assert!(
        err("backends: [{service: s, vars: {v: {container: c}}}]").contains(
            "var `v`: give exactly one of `imageTag: true`, `imagePrefix: true` or `env`"
        )
    );
    assert!(
        err(
            "backends: [{service: s, vars: {v: {container: c, imageTag: true, imagePrefix: true}}}]"
        )
        .contains("var `v`: give exactly one of")
    );
    assert!(
        err("backends: [{service: s, set: {a: \"${nope}\"}}]")
            .contains("`${nope}` is used but not defined under `vars`")
    );
    assert!(
        err("backends: [{service: s, when: {fields: {a: b}}}]").contains("not a valid definition")
    );
    assert!(
        err("backends: [{service: s, add: {a: \"${nope}\"}}]")
            .contains("backend #0: `${nope}` is used but not defined under `vars`")
    );
    assert!(err("backends: [{servise: s}]").contains("not a valid definition"));
}

#[test]
fn the_readmes_example_is_a_valid_definition() {
    let readme = include_str!("../README.md");
    let section = readme.split("## Webhook backends").nth(1).unwrap();
    let yaml = section.split("```yaml").nth(1).unwrap();
    let yaml = yaml.split("```").next().unwrap();
    let backends = WebhookBackends::from_yaml(yaml).unwrap();
    assert_eq!(backends.backends.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_objects_are_not_sent_to_webhooks() {
    let ns = |name: &str, labels: Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "old", "namespace": "apps"},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}});
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "agent-server", "namespace": "platform"},
        "spec": {"selector": {"app": "agent-server"}, "ports": [{"port": 443}]}});
    let sim = start_with(SimConfig {
        webhook_backends: WebhookBackends::from_yaml(BACKENDS).unwrap(),
        seed_objects: vec![
            ns("platform", json!({})),
            ns("apps", json!({"example.com/agents": "on"})),
            service,
            server("2.1", json!([])),
            configuration(),
            old,
        ],
        ..SimConfig::default()
    })
    .await;
    let (_, seeded) = ahttp(&sim, "GET", "/api/v1/namespaces/apps/pods/old", None).await;
    assert_eq!(containers(&seeded), ["app=example.com/app:1"]);
    let new = pod(&sim, "apps", json!({"name": "new"})).await;
    assert_eq!(
        containers(&new),
        ["app=example.com/app:1", "agent=example.com/agent:2.1"]
    );
    sim.shutdown().await;
}

/// Two variants of the agent injector, picked by the pod's `example.com/agent-mode`
/// annotation: `proxy` pods bring their own `agent` container (`image: auto`), whose image
/// the server sets (its own registry and version) and whose other fields it keeps; every
/// other pod gets an `agent` container appended.
const VARIANTS: &str = r#"
backends:
  - webhooks: [agent-injector.example.com]
    when:
      annotations: {example.com/agent-mode: proxy}
    vars:
      registry: {container: server, imagePrefix: true}
      version: {container: server, imageTag: true}
    add:
      metadata:
        annotations: {example.com/agent-status: "proxy ${version}"}
      spec:
        volumes: [{name: agent-socket, emptyDir: {}}]
    set:
      spec:
        containers: [{name: agent, image: "${registry}/agent:${version}", args: [--mode=proxy]}]
  - webhooks: [agent-injector.example.com]
    vars:
      registry: {container: server, imagePrefix: true}
      version: {container: server, imageTag: true}
    add:
      spec:
        containers: [{name: agent, image: "${registry}/agent:${version}"}]
"#;

/// A pod in `apps` with the given annotations and containers.
async fn pod_with(sim: &Sim, name: &str, annotations: Value, containers: Value) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": containers}});
    post(sim, "/api/v1/namespaces/apps/pods", pod).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_chosen_by_annotation_sets_fields_of_the_pods_own_container() {
    let sim = start_with(SimConfig {
        webhook_backends: WebhookBackends::from_yaml(VARIANTS).unwrap(),
        ..SimConfig::default()
    })
    .await;
    agent_server(&sim, json!([])).await;
    post(&sim, CONFIGS, configuration()).await;
    let proxy = json!({"example.com/agent-mode": "proxy"});
    let own_agent = json!([{"name": "agent", "image": "auto", "ports": [{"containerPort": 9000}]}]);

    // the `proxy` variant: the pod's own container gets the server's image, keeps its ports
    let p = pod_with(&sim, "p", proxy.clone(), own_agent.clone()).await;
    assert_eq!(containers(&p), ["agent=example.com/agent:2.1"]);
    assert_eq!(
        p["spec"]["containers"][0],
        json!({"name": "agent", "image": "example.com/agent:2.1", "args": ["--mode=proxy"],
            "ports": [{"containerPort": 9000, "protocol": "TCP"}]}),
    );
    assert_eq!(
        p["metadata"]["annotations"]["example.com/agent-status"],
        "proxy 2.1"
    );
    assert_eq!(
        p["spec"]["volumes"],
        json!([{"name": "agent-socket", "emptyDir": {}}])
    );

    // without the annotation (or with another value), the next backend: appended
    for (name, annotations) in [
        ("plain", json!({})),
        ("other", json!({"example.com/agent-mode": "other"})),
    ] {
        let q = pod(
            &sim,
            "apps",
            json!({"name": name, "annotations": annotations}),
        )
        .await;
        assert_eq!(
            containers(&q),
            ["app=example.com/app:1", "agent=example.com/agent:2.1"],
            "{q}"
        );
        assert!(q["metadata"]["annotations"]["example.com/agent-status"].is_null());
    }

    // the server moves to another registry: its prefix is what later pods get
    put(
        &sim,
        SERVER,
        server_image("registry.example.com/mirror/agent-server:2.2", json!([])),
    )
    .await;
    let r = pod_with(&sim, "r", proxy.clone(), own_agent.clone()).await;
    assert_eq!(
        containers(&r),
        ["agent=registry.example.com/mirror/agent:2.2"]
    );

    // an image without a registry or path has no prefix: the fact cannot be read, the
    // pod is admitted unchanged
    put(&sim, SERVER, server_image("agent-server:2.3", json!([]))).await;
    let s = pod_with(&sim, "s", proxy, own_agent).await;
    assert_eq!(containers(&s), ["agent=auto"]);
    assert!(s["metadata"]["annotations"]["example.com/agent-status"].is_null());
    sim.shutdown().await;
}
