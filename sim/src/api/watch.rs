//! Watch: where the stream starts (resourceVersion / sendInitialEvents),
//! which events a client sees through its selectors, bookmarks, and the
//! streaming loop.

use super::App;
use super::query::selectors;
use super::request::ResourceRequest;
use crate::cluster::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType, Obj, Since};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch as signal};

type Chunk = Result<Bytes, std::io::Error>;

/// The watch parameters of the query string.
#[derive(Debug, Clone, PartialEq)]
struct Options {
    since: Since,
    /// `sendInitialEvents=true`: replay the current state, then a bookmark
    /// marking its end.
    send_initial: bool,
    bookmarks: bool,
    timeout: Duration,
}

impl Options {
    fn parse(q: &HashMap<String, String>) -> ApiResult<Self> {
        let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
        let since =
            match q.get("resourceVersion").map(String::as_str) {
                None | Some("") | Some("0") => Since::Now,
                _ if send_initial => Since::Now,
                Some(rv) => Since::Rv(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        Ok(Options {
            since,
            send_initial,
            bookmarks: q.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
            timeout: q
                .get("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(1800)),
        })
    }
}

/// Which events a watcher sees, and as what: with selectors, an object
/// leaving them is DELETED for the client and one entering them ADDED.
struct Filter {
    key: String,
    ns: Option<String>,
    ls: LabelSelector,
    fs: FieldSelector,
    /// Objects the client currently sees through its selector.
    seen: HashSet<(String, String)>,
}

impl Filter {
    fn selective(&self) -> bool {
        !self.ls.is_empty() || !self.fs.is_empty()
    }

    fn matches(&self, o: &Obj) -> bool {
        (self.ls.is_empty() || self.ls.matches_obj(&o.value))
            && (self.fs.is_empty() || self.fs.matches(&o.value))
    }

    /// A watch resumed from a resourceVersion starts with what the client
    /// already sees: the objects its selector matches now.
    fn resume(&mut self, c: &Cluster) {
        let (items, _, _) = c
            .store
            .list(&self.key, self.ns.as_deref(), None, 0, &|o| self.matches(o));
        self.seen.extend(
            items
                .iter()
                .map(|o| (o.namespace().to_string(), o.name().to_string())),
        );
    }

    /// The line to send for a store event, if the client is to see it.
    fn line(&mut self, e: &Event) -> Option<Bytes> {
        if *e.key != *self.key || self.ns.as_deref().is_some_and(|n| e.obj.namespace() != n) {
            return None;
        }
        if !self.selective() {
            return Some(e.line());
        }
        let k = (e.obj.namespace().to_string(), e.obj.name().to_string());
        let m = self.matches(&e.obj);
        let was = self.seen.contains(&k);
        match (e.ty, m, was) {
            (EventType::Deleted, _, _) => {
                self.seen.remove(&k);
                (m || was).then(|| e.line())
            }
            (_, true, true) => Some(e.line()),
            (_, true, false) => {
                self.seen.insert(k);
                Some(e.line_as(EventType::Added))
            }
            (_, false, true) => {
                self.seen.remove(&k);
                Some(e.line_as(EventType::Deleted))
            }
            (_, false, false) => None,
        }
    }
}

/// A BOOKMARK event line; `initial_end` marks the end of the initial events.
fn bookmark(kind: &str, api_version: &str, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let v = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}});
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// One watch connection's sending side.
struct Stream {
    tx: mpsc::Sender<Chunk>,
    filter: Filter,
    kind: String,
    api_version: String,
    /// Event lines sent so far, for the dropped-watch fault.
    sent: u32,
    drop_after: Option<u32>,
    last_rv: u64,
}

/// Why a stream ends; either way the connection closes.
struct Closed;

impl Stream {
    async fn bookmark(&self, rv: u64, initial_end: bool) -> Result<(), Closed> {
        let b = bookmark(&self.kind, &self.api_version, rv, initial_end);
        self.tx.send(Ok(b)).await.map_err(|_| Closed)
    }

    async fn run(
        mut self,
        replay: Vec<Arc<Event>>,
        rx: broadcast::Receiver<Arc<Event>>,
        shutdown: signal::Receiver<bool>,
        opts: Options,
    ) {
        let _ = self.send_all(replay, rx, shutdown, opts).await;
    }

    async fn send_all(
        &mut self,
        replay: Vec<Arc<Event>>,
        rx: broadcast::Receiver<Arc<Event>>,
        shutdown: signal::Receiver<bool>,
        opts: Options,
    ) -> Result<(), Closed> {
        for e in &replay {
            self.replayed(e).await?;
        }
        if opts.send_initial {
            self.bookmark(self.last_rv, true).await?;
        }
        self.live(rx, shutdown, &opts).await
    }

    /// A replayed event: like a live one, but the dropped-watch fault is
    /// checked only for events the client sees.
    async fn replayed(&mut self, e: &Event) -> Result<(), Closed> {
        let Some(line) = self.filter.line(e) else {
            return Ok(());
        };
        if self.drop_after.is_some_and(|n| self.sent >= n) {
            return Err(Closed);
        }
        self.tx.send(Ok(line)).await.map_err(|_| Closed)?;
        self.sent += 1;
        Ok(())
    }

    /// Live events until the timeout, shutdown, the client leaving, or the
    /// dropped-watch fault; bookmarks every second when asked for.
    async fn live(
        &mut self,
        mut rx: broadcast::Receiver<Arc<Event>>,
        mut shutdown: signal::Receiver<bool>,
        opts: &Options,
    ) -> Result<(), Closed> {
        let deadline = tokio::time::sleep(opts.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            if self.drop_after.is_some_and(|n| self.sent >= n) {
                return Err(Closed);
            }
            tokio::select! {
                _ = &mut deadline => return Ok(()),
                _ = shutdown.changed() => return Ok(()),
                _ = tick.tick(), if opts.bookmarks => self.bookmark(self.last_rv, false).await?,
                _ = self.tx.closed() => return Err(Closed),
                ev = rx.recv() => {
                    let e = ev.map_err(|_| Closed)?;
                    self.last_rv = self.last_rv.max(e.rv);
                    if let Some(line) = self.filter.line(&e) {
                        self.tx.send(Ok(line)).await.map_err(|_| Closed)?;
                        self.sent += 1;
                    }
                }
            }
        }
    }
}

pub(super) fn watch(app: &App, r: &ResourceRequest) -> ApiResult<Response> {
    let c = app.cluster.clone();
    let q = r.query();
    let (ls, fs) = selectors(q)?;
    let opts = Options::parse(q)?;
    let ns = if r.rt.namespaced {
        r.path.namespace.clone()
    } else {
        None
    };
    let key = r.rt.key();
    let from_rv = matches!(opts.since, Since::Rv(_));
    let (replay, rx, start_rv) = c
        .store
        .watch_from(&key, ns.as_deref(), opts.since)
        .map_err(|()| {
            let rv = q.get("resourceVersion").cloned().unwrap_or_default();
            ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                c.store.current_rv()
            ))
        })?;
    let mut filter = Filter {
        key,
        ns,
        ls,
        fs,
        seen: HashSet::new(),
    };
    if filter.selective() && from_rv {
        filter.resume(&c);
    }
    let (tx, body_rx) = mpsc::channel::<Chunk>(256);
    let stream = Stream {
        tx,
        filter,
        kind: r.rt.kind.clone(),
        api_version: r.rt.api_version(),
        sent: 0,
        drop_after: c
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cfg
            .drop_watches_after_events,
        last_rv: start_rv,
    };
    tokio::spawn(stream.run(replay, rx, app.shutdown.clone(), opts));
    Ok(streaming(body_rx))
}

fn streaming(body_rx: mpsc::Receiver<Chunk>) -> Response {
    let stream =
        futures::stream::unfold(
            body_rx,
            |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
        );
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_start_from_a_resource_version_unless_initial_events_are_asked() {
        let o = Options::parse(&query(&[("resourceVersion", "42")])).unwrap();
        assert_eq!(o.since, Since::Rv(42));
        assert!(!o.bookmarks);
        assert_eq!(o.timeout, Duration::from_secs(1800));
        let o = Options::parse(&query(&[("resourceVersion", "0")])).unwrap();
        assert_eq!(o.since, Since::Now);
        let o = Options::parse(&query(&[
            ("resourceVersion", "42"),
            ("sendInitialEvents", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", "5"),
        ]))
        .unwrap();
        assert_eq!(o.since, Since::Now);
        assert!(o.send_initial && o.bookmarks);
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert!(Options::parse(&query(&[("resourceVersion", "x")])).is_err());
    }

    fn event(ty: EventType, app: &str) -> Event {
        let obj = Obj::new(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "a", "labels": {"app": app}},
        }));
        Event {
            rv: 1,
            key: Arc::from("/configmaps"),
            ty,
            obj,
        }
    }

    fn event_type(line: Option<Bytes>) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&line?).unwrap();
        Some(v["type"].as_str().unwrap().to_string())
    }

    #[test]
    fn objects_crossing_the_selector_are_added_and_deleted_for_the_client() {
        let mut f = Filter {
            key: "/configmaps".into(),
            ns: Some("a".into()),
            ls: LabelSelector::parse("app=web").unwrap(),
            fs: FieldSelector::parse("").unwrap(),
            seen: HashSet::new(),
        };
        let mut ty = |t, app| event_type(f.line(&event(t, app)));
        assert_eq!(ty(EventType::Added, "db"), None);
        assert_eq!(ty(EventType::Modified, "web").as_deref(), Some("ADDED"));
        assert_eq!(ty(EventType::Modified, "web").as_deref(), Some("MODIFIED"));
        assert_eq!(ty(EventType::Modified, "db").as_deref(), Some("DELETED"));
        assert_eq!(ty(EventType::Deleted, "db"), None);
    }

    #[test]
    fn other_types_and_namespaces_are_not_seen() {
        let mut f = Filter {
            key: "/secrets".into(),
            ns: None,
            ls: LabelSelector::parse("").unwrap(),
            fs: FieldSelector::parse("").unwrap(),
            seen: HashSet::new(),
        };
        assert!(f.line(&event(EventType::Added, "web")).is_none());
        f.key = "/configmaps".into();
        f.ns = Some("b".into());
        assert!(f.line(&event(EventType::Added, "web")).is_none());
        f.ns = None;
        assert!(f.line(&event(EventType::Added, "web")).is_some());
    }

    #[test]
    fn initial_events_end_with_an_annotated_bookmark() {
        let b: serde_json::Value = serde_json::from_slice(&bookmark("Pod", "v1", 7, true)).unwrap();
        assert_eq!(b["type"], "BOOKMARK");
        assert_eq!(b["object"]["metadata"]["resourceVersion"], "7");
        assert_eq!(
            b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        let plain: serde_json::Value =
            serde_json::from_slice(&bookmark("Pod", "v1", 8, false)).unwrap();
        assert!(plain["object"]["metadata"].get("annotations").is_none());
    }
}
