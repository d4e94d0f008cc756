//! The same API interactions against the real API server and against `meshup sim`, compared
//! by status code and by the fields meshup reads.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;

/// One request, or a wait for a state; `fields` are what is compared.
pub enum Step {
    Req {
        case: &'static str,
        method: &'static str,
        path: &'static str,
        content_type: &'static str,
        body: &'static str,
        /// JSON pointers into the response; `#ptr` is the length of an array, `?ptr` whether a
        /// field is present, `types` the event types of a watch, `cond:TYPE/field` a condition.
        fields: &'static [&'static str],
        /// Remember a field of the response as `{name}` for later paths and bodies.
        save: Option<(&'static str, &'static str)>,
    },
    /// Poll a GET until `ptr` equals `want` (or the object is gone when `want` is "404").
    Until {
        case: &'static str,
        path: &'static str,
        ptr: &'static str,
        want: &'static str,
        secs: u64,
    },
}

impl Step {
    pub fn case(&self) -> &'static str {
        match self {
            Step::Req { case, .. } | Step::Until { case, .. } => case,
        }
    }
}

/// What one endpoint answered for a case: the status code and each compared field.
pub type Outcome = BTreeMap<String, Value>;

/// How a client reaches an API server from inside the namespace (curl).
pub struct Endpoint {
    pub netns: String,
    pub base: String,
    pub curl_args: Vec<String>,
}

impl Endpoint {
    pub fn real(c: &Cluster) -> Endpoint {
        let pki = c.dir.path().join("pki");
        let p = |f: &str| pki.join(f).to_str().unwrap().to_string();
        Endpoint {
            netns: c.netns.clone(),
            base: "https://127.0.0.1:6443".into(),
            curl_args: vec![
                "--cacert".into(),
                p("ca.crt"),
                "--cert".into(),
                p("admin.crt"),
                "--key".into(),
                p("admin.key"),
            ],
        }
    }

    /// One request: (status code, parsed body; a watch stream becomes an array of events).
    pub fn request(&self, method: &str, path: &str, ctype: &str, body: &str) -> (u16, Value) {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.netns,
            "curl",
            "-sS",
            "--max-time",
            "30",
        ])
        .args(&self.curl_args)
        .args(["-X", method, "-w", "\n%{http_code}"])
        .arg(format!("{}{}", self.base, path));
        if !body.is_empty() {
            cmd.args([
                "-H",
                &format!("Content-Type: {ctype}"),
                "--data-binary",
                "@-",
            ]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (payload, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code = code.trim().parse().unwrap_or(0);
        let value = serde_json::from_str(payload).unwrap_or_else(|_| {
            Value::Array(
                payload
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect(),
            )
        });
        (code, value)
    }

    /// Run every step; the outcome of each case.
    pub fn run(&self, steps: &[Step]) -> BTreeMap<&'static str, Outcome> {
        let mut saved: BTreeMap<&str, String> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for step in steps {
            let fill = |s: &str| {
                saved.iter().fold(s.to_string(), |acc, (k, v)| {
                    acc.replace(&format!("{{{k}}}"), v)
                })
            };
            let mut o = Outcome::new();
            match step {
                Step::Req {
                    method,
                    path,
                    content_type,
                    body,
                    fields,
                    save,
                    ..
                } => {
                    let (code, v) = self.request(method, &fill(path), content_type, &fill(body));
                    o.insert("code".into(), code.into());
                    for f in *fields {
                        o.insert(f.to_string(), extract(&v, f));
                    }
                    if let Some((name, ptr)) = save {
                        let s = v
                            .pointer(ptr)
                            .map(|x| x.as_str().map(String::from).unwrap_or(x.to_string()));
                        saved.insert(name, s.unwrap_or_default());
                    }
                }
                Step::Until {
                    path,
                    ptr,
                    want,
                    secs,
                    ..
                } => {
                    let t = Instant::now();
                    let reached = loop {
                        let (code, v) = self.request("GET", &fill(path), "", "");
                        let now = if *want == "404" {
                            code == 404
                        } else {
                            v.pointer(ptr)
                                .map(|x| x.to_string().trim_matches('"') == *want)
                                .unwrap_or(false)
                        };
                        if now || t.elapsed() > Duration::from_secs(*secs) {
                            break now;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    };
                    o.insert(format!("reached within {secs}s"), reached.into());
                }
            }
            out.insert(step.case(), o);
        }
        out
    }
}

fn extract(v: &Value, field: &str) -> Value {
    if let Some(p) = field.strip_prefix('#') {
        return v
            .pointer(p)
            .and_then(Value::as_array)
            .map(|a| a.len().into())
            .unwrap_or(Value::Null);
    }
    if let Some(p) = field.strip_prefix('?') {
        return v.pointer(p).is_some_and(|x| !x.is_null() && x != "").into();
    }
    if field == "types" {
        return v
            .as_array()
            .map(|a| a.iter().map(|e| e["type"].clone()).collect())
            .unwrap_or(Value::Null);
    }
    if let Some(rest) = field.strip_prefix("cond:") {
        let (ty, f) = rest.split_once('/').unwrap();
        return v["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty))
            .map(|c| c[f].clone())
            .unwrap_or(Value::Null);
    }
    v.pointer(field).cloned().unwrap_or(Value::Null)
}

/// `meshup sim` inside the cluster's namespace, killed on drop.
pub struct SimProcess {
    child: Child,
    pub endpoint: Endpoint,
    /// Where the simulator writes its kubeconfig (by default it writes into the cwd).
    _dir: tempfile::TempDir,
}

impl SimProcess {
    pub fn start(c: &Cluster) -> SimProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = c
            .in_ns(&c.meshup)
            .args([
                "sim",
                "--port",
                "0",
                "--ready-delay-ms",
                "50",
                "--kubeconfig-out",
            ])
            .arg(dir.path().join("kubeconfig"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start meshup sim");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(url) = l.strip_prefix("listening on ") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("meshup sim exited before listening"),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        SimProcess {
            _dir: dir,
            child,
            endpoint: Endpoint {
                netns: c.netns.clone(),
                base,
                curl_args: vec![],
            },
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Cases whose outcomes differ: (case, field, real, sim).
pub fn divergences(
    real: &BTreeMap<&'static str, Outcome>,
    sim: &BTreeMap<&'static str, Outcome>,
) -> Vec<(String, String, Value, Value)> {
    let mut out = Vec::new();
    for (case, r) in real {
        let s = &sim[case];
        for (field, rv) in r {
            let sv = s.get(field).cloned().unwrap_or(Value::Null);
            if *rv != sv {
                out.push((case.to_string(), field.clone(), rv.clone(), sv));
            }
        }
    }
    out
}
