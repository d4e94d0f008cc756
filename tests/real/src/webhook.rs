//! The webhook server standing in for a control plane's injector on the real API server
//! (`src/bin/webhook-server.rs`), run inside a cluster's network namespace for as long as
//! the returned guard lives.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, repo_root};

/// The port behind Istio's webhook Services (`istiod` 443 → 15017).
pub const PORT: u16 = 15017;

pub struct WebhookServer {
    child: Child,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// Start the server for the webhook Services of `namespaces`: a serving certificate for
    /// `*.<namespace>.svc` signed by the cluster's CA (which it writes into the webhook
    /// configurations, as istiod does), the simulator's backends (bundles/sim-webhooks.yaml)
    /// for what it does. Returns once it listens.
    #[track_caller]
    pub fn webhook_server(&self, bin: &Path, namespaces: &[&str]) -> WebhookServer {
        let pki = self.dir.path().join("pki");
        let sans: Vec<String> = namespaces
            .iter()
            .map(|n| format!("DNS:*.{n}.svc"))
            .collect();
        let (key, cert) = (pki.join("webhook.key"), pki.join("webhook.crt"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=webhook-server",
            "-CA",
            pki.join("ca.crt").to_str().unwrap(),
            "-CAkey",
            pki.join("ca.key").to_str().unwrap(),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
            "-addext",
            &format!("subjectAltName={}", sans.join(",")),
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-addext",
            "basicConstraints=CA:FALSE",
        ]);
        let log = self.dir.path().join("logs/webhook-server.log");
        let mut cmd = self.in_ns(bin);
        cmd.args(["--listen", &format!("0.0.0.0:{PORT}")])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--ca")
            .arg(pki.join("ca.crt"))
            .arg("--backends")
            .arg(repo_root().join("bundles/sim-webhooks.yaml"))
            .arg("--kubectl")
            .arg(self.bin.join("kubectl"))
            // Its own user, so the audit log tells its requests from meshup's.
            .arg("--kubeconfig")
            .arg(self.dir.path().join("components.kubeconfig"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("webhook server log"));
        for ns in namespaces {
            cmd.args(["--namespace", ns]);
        }
        let child = cmd.spawn().expect("start webhook-server");
        let server = WebhookServer { child };
        let t = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening")
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "webhook-server did not start: {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

#[track_caller]
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
