//! Cluster access: one `kube::Client`, dynamic objects by apiVersion/kind, server-side apply.
//!
//! Everything meshup reads or writes goes through here, so connection errors, resource
//! discovery and field-manager choices live in one place.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Client, Config};
use serde_json::Value;

use crate::base::object::ObjectKey;

/// What can go wrong talking to the cluster. Callers branch on the variant (a kind that is
/// not served reads as "no objects" in several places); the exit code is chosen once, in
/// `cli::exit::code_of`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig cannot be read or used: the user's input (exit 2).
    #[error("{0}")]
    Kubeconfig(String),
    /// The API server does not answer at all.
    #[error("cannot reach the cluster at {at}: {cause}")]
    Unreachable { at: String, cause: String },
    /// The cluster has no such kind (its CRD is not installed, or not yet).
    #[error("the cluster does not serve {kind} ({api_version})")]
    NotServed { api_version: String, kind: String },
    /// The API server refused or failed a request. (The cause is part of the message, not
    /// a source: callers print this error on its own, e.g. in a failed component's line.)
    #[error("{doing}: {cause}")]
    Api { doing: String, cause: kube::Error },
    /// An object kept changing between our read and our write.
    #[error("{doing}: it kept changing under us (5 conflicts in a row)")]
    Conflicts { doing: String },
    /// An object that is not what Kubernetes accepts (e.g. no metadata.name).
    #[error("{doing}: not a Kubernetes object: {cause}")]
    Malformed {
        doing: String,
        cause: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn api(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let doing = doing.into();
        move |cause| Error::Api { doing, cause }
    }

    /// The API server's own answer (status code and message), when it gave one.
    pub fn status(&self) -> Option<&kube::core::Status> {
        match self {
            Error::Api {
                cause: kube::Error::Api(s),
                ..
            } => Some(s),
            _ => None,
        }
    }

    /// The API server refused the caller (403): RBAC does not allow it.
    pub fn is_forbidden(&self) -> bool {
        self.status().is_some_and(|s| s.code == 403)
    }

    /// The API server refused the object, not failed: a 4xx, or the 500 kube-apiserver
    /// answers a server-side apply whose object does not fit its schema (a string field
    /// given a bool, as `--set key=true` gives): "failed to create typed patch object".
    pub fn is_refusal(&self) -> bool {
        self.status().is_some_and(|s| {
            (400..500).contains(&s.code)
                || s.message.contains("failed to create typed patch object")
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The field manager meshup applies with.
pub const FIELD_MANAGER: &str = "meshup";

/// How to reach the cluster (kubectl's flags).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
}

pub struct Cluster {
    client: Client,
    probe: Client,
    /// Where we connected, for messages: `context (https://host:port)`.
    pub describe: String,
    resources: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Cluster {
    /// Build a client from the kubeconfig and check the API server answers.
    pub async fn connect(target: &Target) -> Result<Cluster> {
        let opts = KubeConfigOptions {
            context: target.context.clone(),
            ..Default::default()
        };
        let (config, source) = match &target.kubeconfig {
            Some(path) => {
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Kubeconfig(format!(
                        "kubeconfig {}: {e}; pass --kubeconfig a valid file (e.g. the one `meshup sim --kubeconfig-out` wrote)",
                        path.display()
                    ))
                })?;
                let c = Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| bad_config(path, &e))?;
                (c, path.display().to_string())
            }
            None => {
                let c = Config::from_kubeconfig(&opts).await.map_err(|e| {
                    Error::Kubeconfig(format!(
                        "no usable kubeconfig (KUBECONFIG or ~/.kube/config): {e}; pass --kubeconfig FILE"
                    ))
                })?;
                (
                    c,
                    std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
                )
            }
        };
        let mut config = config;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(60));
        let context = target
            .context
            .clone()
            .unwrap_or_else(|| "current context".into());
        let describe = format!("{} ({context} in {source})", config.cluster_url);
        // A client without retries, so an unreachable cluster is reported at once.
        let mut probe_config = config.clone();
        probe_config.default_retry = false;
        let unusable = |e: kube::Error| {
            Error::Kubeconfig(format!("cannot build a client for {describe}: {e}"))
        };
        let probe = Client::try_from(probe_config).map_err(unusable)?;
        // Our own retry layer (5xx, connection errors, jitter) replaces kube's default one.
        config.default_retry = false;
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(unusable)?
            .with_layer(&tower::buffer::BufferLayer::new(1024))
            .with_layer(&tower::retry::RetryLayer::new(
                crate::cluster::retry::RetryPolicy::default(),
            ))
            .build();
        let cluster = Cluster {
            client,
            probe,
            describe,
            resources: Mutex::new(HashMap::new()),
        };
        Ok(cluster)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `GET /version`, tried once: is the API server there at all?
    pub async fn check_reachable(&self) -> Result<()> {
        self.version_within(&self.probe, Duration::from_secs(10))
            .await
            .map(drop)
    }

    /// `GET /version` (with retries).
    /// Whether `api_version`'s discovery document lists `resource` (subresources too).
    pub async fn serves(&self, api_version: &str, resource: &str) -> Result<bool> {
        let listed = if api_version.contains('/') {
            self.client.list_api_group_resources(api_version).await
        } else {
            self.client.list_core_api_resources(api_version).await
        };
        match listed {
            Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(Error::api(format!("discovering {api_version}"))(e)),
        }
    }

    pub async fn server_version(&self) -> Result<String> {
        self.version_within(&self.client, Duration::from_secs(60))
            .await
    }

    async fn version_within(&self, client: &Client, limit: Duration) -> Result<String> {
        let unreachable = |cause: String| Error::Unreachable {
            at: self.describe.clone(),
            cause,
        };
        let info = tokio::time::timeout(limit, client.apiserver_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {} s", limit.as_secs())))?
            .map_err(|e| unreachable(root_cause(&e)))?;
        Ok(info.git_version)
    }

    /// Resolve apiVersion + kind to a resource, once per kind.
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities)> {
        let key = (api_version.to_string(), kind.to_string());
        let not_served = || Error::NotServed {
            api_version: api_version.into(),
            kind: kind.into(),
        };
        if let Some(r) = self
            .resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(r.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let found = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => found,
            // No such group/version (404), or the group/version has no such kind.
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(not_served()),
            Err(kube::Error::Discovery(_)) => return Err(not_served()),
            Err(e) => {
                return Err(Error::api(format!("discovering {kind} ({api_version})"))(e));
            }
        };
        self.resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, found.clone());
        Ok(found)
    }

    /// The dynamic API for a kind, namespaced if the kind is.
    pub async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>> {
        let (ar, caps) = self.resource(api_version, kind).await?;
        Ok(match (caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        })
    }

    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Value>> {
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        let obj = api
            .get_opt(&key.name)
            .await
            .map_err(Error::api(format!("reading {key}")))?;
        obj.as_ref()
            .map(|o| to_value(o).map_err(malformed(format!("reading {key}"))))
            .transpose()
    }

    /// The dynamic API of `obj`'s kind, its key and the object as kube's type.
    pub(crate) async fn dynamic(
        &self,
        obj: &Value,
        doing: &str,
    ) -> Result<(ObjectKey, Api<DynamicObject>, DynamicObject)> {
        let key = ObjectKey::of(obj);
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        let object =
            serde_json::from_value(obj.clone()).map_err(malformed(format!("{doing} {key}")))?;
        Ok((key, api, object))
    }

    /// Server-side apply one object as field manager `manager` (forced: the applier owns
    /// what it renders).
    pub async fn apply(&self, obj: &Value, dry_run: bool, manager: &str) -> Result<Value> {
        let key = ObjectKey::of(obj);
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        let mut pp = PatchParams::apply(manager).force();
        pp.dry_run = dry_run;
        let out = api
            .patch(&key.name, &pp, &Patch::Apply(obj))
            .await
            .map_err(Error::api(format!("applying {key}")))?;
        to_value(&out).map_err(malformed(format!("applying {key}")))
    }

    /// Write `obj` back exactly as given (an update that replaces the whole object, so
    /// fields any field manager added since are gone), or create it if it is gone. Used
    /// to restore captured objects; a conflicting concurrent write is retried on the
    /// fresh resourceVersion.
    pub async fn replace_or_create(&self, obj: &Value, manager: &str) -> Result<Value> {
        let key = ObjectKey::of(obj);
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        let pp = PostParams {
            field_manager: Some(manager.into()),
            ..Default::default()
        };
        let doing = || format!("restoring {key}");
        for _ in 0..5 {
            let mut desired: DynamicObject =
                serde_json::from_value(obj.clone()).map_err(malformed(doing()))?;
            let live = api.get_opt(&key.name).await.map_err(Error::api(doing()))?;
            let written = match live {
                Some(live) => {
                    desired.metadata.resource_version = live.metadata.resource_version;
                    api.replace(&key.name, &pp, &desired).await
                }
                None => api.create(&pp, &desired).await,
            };
            match written {
                Ok(o) => return to_value(&o).map_err(malformed(doing())),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(Error::api(doing())(e)),
            }
        }
        Err(Error::Conflicts { doing: doing() })
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let api = self
            .api(&key.api_version, &key.kind, key.namespace.as_deref())
            .await?;
        match api.delete(&key.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(Error::api(format!("deleting {key}"))(e)),
        }
    }
}

pub(crate) fn malformed(doing: String) -> impl FnOnce(serde_json::Error) -> Error {
    move |cause| Error::Malformed { doing, cause }
}

fn bad_config(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::Kubeconfig(format!(
        "kubeconfig {}: {e}; check --context and the file",
        path.display()
    ))
}

/// The object without what the API server assigns or owns (uid, resourceVersion,
/// managedFields, timestamps, status): what a diff compares and what a restore writes back.
pub fn without_server_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            m.remove(k);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// The object as JSON (what the rest of meshup reads).
pub fn to_value(o: &DynamicObject) -> serde_json::Result<Value> {
    serde_json::to_value(o)
}

/// The innermost error message ("Connection refused (os error 111)"), which is what a person needs.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    let mut msgs = vec![cur.to_string()];
    while let Some(next) = cur.source() {
        msgs.push(next.to_string());
        cur = next;
    }
    msgs.last().cloned().unwrap_or_default()
}
