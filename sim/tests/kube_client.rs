//! The `kube` crate's client, watcher and await_condition against the simulator.

mod common;

use common::{client, start};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::time::Duration;

fn deployment(name: &str, replicas: i32, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image}]}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_conflicts_and_errors() {
    let sim = start().await;
    let c = client(&sim).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}),
    )
    .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    // AlreadyExists
    let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );
    // update with the current resourceVersion works; a stale one conflicts
    let mut next = created.clone();
    next.data.as_mut().unwrap().insert("k".into(), "w".into());
    let updated = cms
        .replace("a", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    let err = cms
        .replace("a", &PostParams::default(), &next)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    // NotFound
    let err = cms.get("nope").await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    // merge patch, dry run leaves the object alone
    let p = cms
        .patch(
            "a",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"dry": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data.as_ref().unwrap()["dry"], "1");
    assert!(
        cms.get("a")
            .await
            .unwrap()
            .data
            .unwrap()
            .contains_key("dry")
            .eq(&false)
    );
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"m": "1"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::<()>::Json(
            serde_json::from_value(json!([{"op": "add", "path": "/data/j", "value": "2"}]))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["m"], "1");
    assert_eq!(got.data.as_ref().unwrap()["j"], "2");
    // Invalid name → 422
    let bad: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    let err = cms.create(&PostParams::default(), &bad).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 422 && s.reason == "Invalid"),
        "{err:?}"
    );
    // missing namespace → 404
    let other: Api<ConfigMap> = Api::namespaced(c.clone(), "missing");
    let err = other.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err:?}"
    );
    // delete, dry-run delete keeps it
    cms.delete("a", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert!(cms.get("a").await.is_ok());
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get("a").await.is_err());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_with_kube() {
    let sim = start().await;
    let c = client(&sim).await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pp = PatchParams::apply("meshup").force();
    deps.patch("web", &pp, &Patch::Apply(deployment("web", 2, "app:1")))
        .await
        .unwrap();
    // another manager changing replicas without force conflicts
    let err = deps
        .patch(
            "web",
            &PatchParams::apply("other"),
            &Patch::Apply(deployment("web", 4, "app:1")),
        )
        .await
        .unwrap_err();
    match &err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert!(
                s.message.contains("conflict with \"meshup\""),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // same values: shared ownership, no conflict
    deps.patch(
        "web",
        &PatchParams::apply("other"),
        &Patch::Apply(deployment("web", 2, "app:1")),
    )
    .await
    .unwrap();
    let d = deps.get("web").await.unwrap();
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"meshup".to_string()) && managers.contains(&"other".to_string()),
        "{managers:?}"
    );
    assert_eq!(d.metadata.generation, Some(1));
    deps.patch("web", &pp, &Patch::Apply(deployment("web", 2, "app:2")))
        .await
        .unwrap();
    assert_eq!(deps.get("web").await.unwrap().metadata.generation, Some(2));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn await_condition_and_watcher() {
    let sim = start().await;
    let c = client(&sim).await;
    let deps: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut ready_stream = watcher(pods.clone(), watcher::Config::default().labels("app=web"))
        .default_backoff()
        .applied_objects()
        .boxed();
    deps.patch(
        "web",
        &PatchParams::apply("t").force(),
        &Patch::Apply(deployment("web", 3, "app:1")),
    )
    .await
    .unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(deps.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .expect("deployment completes in time")
    .unwrap()
    .unwrap();
    let st = done.status.unwrap();
    assert_eq!(st.ready_replicas, Some(3));
    assert_eq!(st.updated_replicas, Some(3));
    assert_eq!(st.available_replicas, Some(3));
    assert_eq!(st.observed_generation, Some(1));
    // the watcher saw pods become Ready
    let mut ready = std::collections::HashSet::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(p) = ready_stream.try_next().await.unwrap() {
            let is_ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if is_ready {
                ready.insert(p.metadata.name.clone().unwrap());
            }
            if ready.len() == 3 {
                break;
            }
        }
    })
    .await
    .expect("watcher sees 3 ready pods");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_resource_version_and_list_pagination() {
    let sim = start().await;
    let c = client(&sim).await;
    let ns: Api<Namespace> = Api::all(c.clone());
    let list = ns.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    for i in 0..7 {
        let n: Namespace = serde_json::from_value(
            json!({"metadata": {"name": format!("ns-{i}"), "labels": {"i": i.to_string()}}}),
        )
        .unwrap();
        ns.create(&PostParams::default(), &n).await.unwrap();
    }
    // watch from the listed version replays exactly the 7 creations
    let mut stream = ns
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let mut added = 0;
    while let Some(ev) = stream.try_next().await.unwrap() {
        if let WatchEvent::Added(n) = ev {
            assert!(n.metadata.name.unwrap().starts_with("ns-"));
            added += 1;
            if added == 7 {
                break;
            }
        }
    }
    assert_eq!(added, 7);
    // pagination: 11 namespaces (4 builtin + 7) in pages of 3
    let mut names = vec![];
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = ns.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.into_iter().map(|n| n.metadata.name.unwrap()));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => lp = lp.continue_token(&t),
            _ => break,
        }
    }
    assert_eq!(names.len(), 11);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let sel = ns
        .list(&ListParams::default().labels("i in (1,2,3),i!=2"))
        .await
        .unwrap();
    assert_eq!(sel.items.len(), 2);
    let f = ns
        .list(&ListParams::default().fields("metadata.name=ns-4"))
        .await
        .unwrap();
    assert_eq!(f.items.len(), 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_with_streaming_lists() {
    let sim = start().await;
    let c = client(&sim).await;
    let ns: Api<Namespace> = Api::all(c.clone());
    let mut stream = watcher(ns.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut init = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = stream.try_next().await.unwrap() {
            match ev {
                watcher::Event::InitApply(_) => init += 1,
                watcher::Event::InitDone => break,
                _ => {}
            }
        }
    })
    .await
    .expect("initial events end with a bookmark");
    assert_eq!(init, 4, "the four built-in namespaces");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_dynamic_objects() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DynamicObject, GroupVersionKind};
    use kube::discovery::{self, Discovery, Scope};
    let sim = start().await;
    let c = client(&sim).await;
    let crds: Api<CustomResourceDefinition> = Api::all(c.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "istiooperators.install.istio.io"},
        "spec": {"group": "install.istio.io", "scope": "Namespaced",
                 "names": {"plural": "istiooperators", "singular": "istiooperator", "kind": "IstioOperator", "shortNames": ["iop"]},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.patch(
        "istiooperators.install.istio.io",
        &PatchParams::apply("t"),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(
            crds.clone(),
            "istiooperators.install.istio.io",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let disc = Discovery::new(c.clone()).run().await.unwrap();
    assert!(disc.has_group("apps"));
    assert!(disc.has_group("install.istio.io"));
    let gvk = GroupVersionKind::gvk("install.istio.io", "v1alpha1", "IstioOperator");
    let (ar, caps) = discovery::pinned_kind(&c, &gvk).await.unwrap();
    assert_eq!(ar.plural, "istiooperators");
    assert!(matches!(caps.scope, Scope::Namespaced));
    let api: Api<DynamicObject> = Api::namespaced_with(c.clone(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
        "metadata": {"name": "installed-state"},
        "spec": {"profile": "default", "tag": "1.7.8"}
    }))
    .unwrap();
    api.patch(
        "installed-state",
        &PatchParams::apply("meshup").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap();
    let got = api.get("installed-state").await.unwrap();
    assert_eq!(got.data["spec"]["tag"], "1.7.8");
    let deploy_gvk = GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (dar, _) = discovery::pinned_kind(&c, &deploy_gvk).await.unwrap();
    assert_eq!(dar.plural, "deployments");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_are_accepted() {
    let sim = start().await;
    let c = client(&sim).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let big = "x".repeat(5 * 1024 * 1024);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "big"}, "data": {"manifest": big}}))
            .unwrap();
    cms.patch("big", &PatchParams::apply("t"), &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(
        cms.get("big").await.unwrap().data.unwrap()["manifest"].len(),
        5 * 1024 * 1024
    );
    sim.shutdown().await;
}
