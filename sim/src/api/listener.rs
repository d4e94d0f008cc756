//! The TCP listener, which can simulate an outage by refusing connections.

use crate::cluster::Cluster;
use std::sync::Arc;
use std::time::Duration;

/// The TCP listener; during a `refuse` outage it closes new API connections
/// (peeking at the request line so `/sim/` requests still get through).
pub struct SimListener {
    pub inner: ::tokio::net::TcpListener,
    pub cluster: Arc<Cluster>,
}

impl SimListener {
    fn refusing(&self) -> bool {
        self.cluster
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refusing()
    }
}

/// Whether a connection's first request is for a `/sim/` path.
async fn is_control_request(s: &::tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 16];
    let n = match ::tokio::time::timeout(Duration::from_millis(500), s.peek(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace()
        .nth(1)
        .is_some_and(|p| p.starts_with("/sim/"))
}

impl axum::serve::Listener for SimListener {
    type Io = ::tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (s, a) = match self.inner.accept().await {
                Ok(x) => x,
                Err(_) => {
                    ::tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if !self.refusing() || is_control_request(&s).await {
                return (s, a);
            }
            drop(s);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
