//! A mutating webhook server for the real tier, standing in for the servers behind a
//! control plane's webhooks (Istio's injector in istiod) on a real kube-apiserver. No
//! container runs on KWOK's nodes, so nothing would answer the API server's call and a
//! `failurePolicy: Fail` webhook would refuse every pod it selects.
//!
//! It does what the simulator's webhook backends (bundles/sim-webhooks.yaml) say the real
//! server does, with the facts of the pod that was called: KWOK gives pods addresses in
//! 127.0.0.0/8 (`tests/real/cluster`), the API server dials a webhook Service's ready
//! endpoints (`--enable-aggregator-routing`), and this server listens on every loopback
//! address, so the address a request arrives on names the server pod the API server chose.
//! Like istiod, it writes its CA into the `caBundle` of the webhook configurations that
//! name a Service in its namespaces. Reads the cluster with kubectl.
//!
//! webhook-server --listen ADDR --cert PEM --key PEM --ca PEM --backends YAML
//!                --kubectl PATH --kubeconfig PATH --namespace NS...

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router, extract::connect_info::Connected, routing::post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use meshup_sim::WebhookBackends;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

struct Args {
    listen: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
    backends: PathBuf,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    namespaces: Vec<String>,
}

fn args() -> Args {
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let key = flag.trim_start_matches("--").to_string();
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        named.entry(key).or_default().push(value);
    }
    let one = |k: &str| {
        named
            .get(k)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("--{k} is required"))
    };
    Args {
        listen: one("listen").parse().expect("--listen ADDR:PORT"),
        cert: one("cert").into(),
        key: one("key").into(),
        ca: one("ca").into(),
        backends: one("backends").into(),
        kubectl: one("kubectl").into(),
        kubeconfig: one("kubeconfig").into(),
        namespaces: named.remove("namespace").unwrap_or_default(),
    }
}

/// The cluster, read and written with kubectl.
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd
    }

    fn json(&self, args: &[&str]) -> Option<Value> {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        let out = self.command(&full).output().ok()?;
        if !out.status.success() {
            eprintln!(
                "webhook-server: kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

struct Server {
    backends: WebhookBackends,
    kube: Kubectl,
}

/// The address a connection arrived on: the pod address the API server dialed.
#[derive(Clone, Copy, Debug)]
struct Dialed(SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for Dialed {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        *stream.remote_addr()
    }
}

/// TLS over TCP; `Addr` is the local address each connection was accepted on.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = Dialed;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, _peer)) = self.tcp.accept().await else {
                continue;
            };
            let Ok(local) = tcp.local_addr() else {
                continue;
            };
            match self.tls.accept(tcp).await {
                Ok(io) => return (io, Dialed(local)),
                Err(e) => eprintln!("webhook-server: TLS handshake on {local}: {e}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr().map(Dialed)
    }
}

fn tls_config(a: &Args) -> rustls::ServerConfig {
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(&a.cert)
        .expect("--cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("--cert PEM");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&a.key).expect("--key PEM");
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let backends = WebhookBackends::from_file(&a.backends).expect("--backends");
    let ca = B64.encode(std::fs::read(&a.ca).expect("--ca"));
    let kube = Kubectl {
        bin: a.kubectl.clone(),
        kubeconfig: a.kubeconfig.clone(),
    };
    let namespaces = a.namespaces.clone();
    let patcher = Kubectl {
        bin: a.kubectl.clone(),
        kubeconfig: a.kubeconfig.clone(),
    };
    std::thread::spawn(move || keep_ca_bundles(&patcher, &namespaces, &ca));
    let listener = TlsListener {
        tcp: TcpListener::bind(a.listen).await.expect("--listen"),
        tls: TlsAcceptor::from(Arc::new(tls_config(&a))),
    };
    let server = Arc::new(Server { backends, kube });
    // One request per connection: a real server pod's connections end with the pod, but
    // this server outlives every pod, and the API server would keep sending calls down a
    // kept-alive connection to an address whose pod is gone.
    let app = Router::new()
        .fallback(post(review))
        .layer(axum::middleware::map_response(close_connection))
        .with_state(server)
        .into_make_service_with_connect_info::<Dialed>();
    eprintln!("webhook-server: listening on {}", a.listen);
    axum::serve(listener, app).await.expect("serve");
}

async fn close_connection(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An AdmissionReview: allowed, with the backend's mutation of the object as a JSON patch.
async fn review(
    State(server): State<Arc<Server>>,
    ConnectInfo(Dialed(dialed)): ConnectInfo<Dialed>,
    uri: Uri,
    Json(review): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let request = &review["request"];
    let path = uri.path().to_string();
    let object = request["object"].clone();
    let server2 = server.clone();
    let mutated = tokio::task::spawn_blocking(move || server2.mutate(dialed, &path, object))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|why| (StatusCode::SERVICE_UNAVAILABLE, why))?;
    let mut response = json!({"uid": request["uid"], "allowed": true});
    if let Some(patch) = mutated {
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(B64.encode(patch.to_string()));
    }
    Ok(Json(json!({
        "apiVersion": review["apiVersion"].as_str().unwrap_or("admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    })))
}

impl Server {
    /// The patch the server at `dialed` makes to `object` for a call on `path`; `None`
    /// when it changes nothing. An error when no server of a webhook is at that address:
    /// the API server's endpoints can lag behind a rollout for a moment, and KWOK hands
    /// a deleted pod's address to the next pod, where a real cluster would refuse the
    /// connection; the API server then applies the webhook's failure policy.
    fn mutate(
        &self,
        dialed: SocketAddr,
        path: &str,
        object: Value,
    ) -> Result<Option<Value>, String> {
        let what = format!(
            "{path} {}/{}",
            object["metadata"]["namespace"].as_str().unwrap_or("-"),
            object["metadata"]["generateName"]
                .as_str()
                .or(object["metadata"]["name"].as_str())
                .unwrap_or("-"),
        );
        let said = |why: String| {
            eprintln!("webhook-server: {what}: unchanged, {why}");
        };
        let refused = |why: String| {
            eprintln!("webhook-server: {what}: refused, {why}");
            why
        };
        let unreadable = || refused("the cluster could not be read".into());
        let ip = dialed.ip().to_string();
        let pods = self
            .kube
            .json(&[
                "get",
                "pods",
                "-A",
                "--field-selector",
                &format!("status.podIP={ip}"),
            ])
            .ok_or_else(unreadable)?;
        let Some(pod) = pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["metadata"]["deletionTimestamp"].is_null())
            .cloned()
        else {
            return Err(refused(format!("no pod has the address {ip}")));
        };
        let server = pod["metadata"]["name"].as_str().unwrap_or("-").to_string();
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        // The pod's Services, read once: those whose selector picks it.
        let services = self
            .kube
            .json(&["get", "services", "-n", ns])
            .ok_or_else(unreadable)?;
        let labels = &pod["metadata"]["labels"];
        let selecting: Vec<&str> = services["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|svc| {
                svc["spec"]["selector"]
                    .as_object()
                    .is_some_and(|sel| !sel.is_empty() && sel.iter().all(|(k, v)| &labels[k] == v))
            })
            .filter_map(|svc| svc["metadata"]["name"].as_str())
            .collect();
        let configs = self
            .kube
            .json(&["get", "mutatingwebhookconfigurations"])
            .ok_or_else(unreadable)?;
        let webhooks: Vec<&Value> = configs["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["webhooks"].as_array().into_iter().flatten())
            .filter(|w| calls(w, ns, &selecting, path))
            .collect();
        if webhooks.is_empty() {
            return Err(refused(format!(
                "{server} at {ip} serves no webhook at {path}"
            )));
        }
        let Some(backend) = webhooks
            .iter()
            .find_map(|w| self.backends.serving(w, &object))
        else {
            said(format!(
                "no backend serves the {} webhook(s) calling {server} at {path}",
                webhooks.len()
            ));
            return Ok(None);
        };
        let mut changed = object.clone();
        if !backend.mutate_as(&pod["spec"], &mut changed) {
            said(format!("the backend of {server} leaves it so"));
            return Ok(None);
        }
        let ops: Vec<Value> = ["metadata", "spec"]
            .into_iter()
            .filter(|k| changed[k] != object[k])
            .map(|k| json!({"op": "replace", "path": format!("/{k}"), "value": changed[k]}))
            .collect();
        eprintln!("webhook-server: {what}: mutated as {server}");
        Ok(Some(Value::Array(ops)))
    }
}

/// Whether `webhook` calls a server pod in `ns` at `path`: it names one of the Services
/// (`selecting`) that select the pod.
fn calls(webhook: &Value, ns: &str, selecting: &[&str], path: &str) -> bool {
    let service = &webhook["clientConfig"]["service"];
    service["namespace"] == ns
        && service["path"].as_str().unwrap_or("/") == path
        && service["name"]
            .as_str()
            .is_some_and(|name| selecting.contains(&name))
}

/// What istiod does for its own configurations: whenever a mutating webhook configuration
/// names a Service in one of `namespaces` without this CA, patch it in. Follows a watch.
fn keep_ca_bundles(kube: &Kubectl, namespaces: &[String], ca: &str) {
    loop {
        let child = kube
            .command(&[
                "get",
                "mutatingwebhookconfigurations",
                "--watch",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            std::thread::sleep(std::time::Duration::from_secs(1));
            continue;
        };
        let out = BufReader::new(child.stdout.take().expect("piped"));
        for config in serde_json::Deserializer::from_reader(out).into_iter::<Value>() {
            let Ok(config) = config else { break };
            patch_ca(kube, &config, namespaces, ca);
        }
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn patch_ca(kube: &Kubectl, config: &Value, namespaces: &[String], ca: &str) {
    let Some(name) = config["metadata"]["name"].as_str() else {
        return;
    };
    let ops: Vec<Value> = config["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, w)| {
            let ns = w["clientConfig"]["service"]["namespace"].as_str();
            ns.is_some_and(|ns| namespaces.iter().any(|n| n == ns))
                && w["clientConfig"]["caBundle"] != ca
        })
        .map(|(i, _)| json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": ca}))
        .collect();
    if ops.is_empty() {
        return;
    }
    let patch = Value::Array(ops).to_string();
    let out = kube
        .command(&[
            "patch",
            "mutatingwebhookconfiguration",
            name,
            "--type=json",
            "-p",
            &patch,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => eprintln!("webhook-server: CA bundle written into {name}"),
        Ok(o) => eprintln!(
            "webhook-server: patch {name}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => eprintln!("webhook-server: patch {name}: {e}"),
    }
}
