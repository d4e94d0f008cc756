//! Retries for API calls: 429 (honouring Retry-After), 5xx and connection errors, with
//! exponential backoff and full jitter, as a tower layer under the `kube` client.
//!
//! Only requests that are safe to repeat are retried on ambiguous failures: GET, PUT,
//! PATCH (server-side apply is idempotent) and DELETE. A POST is retried only when the
//! server said it did not process it (429, 503).

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tower::BoxError;
use tower::retry::Policy;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    attempt: u32,
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// About a minute of retrying in all: enough to ride out a short API outage.
    fn default() -> Self {
        RetryPolicy {
            attempt: 0,
            max_attempts: 24,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Whether a response or error is worth another try, and the server's requested delay.
fn classify(
    method: &Method,
    result: &Result<Response<impl Sized>, BoxError>,
) -> Option<Option<Duration>> {
    match result {
        Ok(r) => {
            let status = r.status();
            let retry_after = r
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let not_processed = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            let server_error = status.is_server_error();
            (not_processed || (server_error && idempotent(method))).then_some(retry_after)
        }
        Err(_) if idempotent(method) => Some(None),
        Err(_) => None,
    }
}

impl RetryPolicy {
    /// Full jitter: a random delay between 0 and min(cap, base * 2^attempt).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        if self.attempt >= self.max_attempts {
            return None;
        }
        let server_delay = classify(req.method(), result)?;
        let delay = server_delay
            .map(|d| d.min(Duration::from_secs(30)))
            .unwrap_or_else(|| self.backoff(self.attempt));
        self.attempt += 1;
        tracing::debug!(method = %req.method(), uri = %req.uri(), attempt = self.attempt, ?delay, "retrying API call");
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Streaming bodies cannot be replayed; everything meshup sends is buffered.
        let body = req.body().try_clone()?;
        let mut out = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(h) = out.headers_mut() {
            h.extend(req.headers().clone());
        }
        out.body(body).ok().map(|mut r| {
            *r.extensions_mut() = req.extensions().clone();
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, retry_after: Option<&str>) -> Result<Response<()>, BoxError> {
        let mut b = Response::builder().status(status);
        if let Some(r) = retry_after {
            b = b.header("Retry-After", r);
        }
        Ok(b.body(()).unwrap())
    }

    #[test]
    fn what_is_retried() {
        assert_eq!(
            classify(&Method::GET, &resp(429, Some("2"))),
            Some(Some(Duration::from_secs(2)))
        );
        assert_eq!(classify(&Method::POST, &resp(429, None)), Some(None));
        assert_eq!(classify(&Method::PATCH, &resp(500, None)), Some(None));
        assert_eq!(
            classify(&Method::POST, &resp(500, None)),
            None,
            "a create may have happened"
        );
        assert_eq!(classify(&Method::GET, &resp(404, None)), None);
        assert_eq!(classify(&Method::GET, &resp(200, None)), None);
        let err: Result<Response<()>, BoxError> = Err("connection refused".into());
        assert_eq!(classify(&Method::DELETE, &err), Some(None));
        assert_eq!(classify(&Method::POST, &err), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 0..20 {
            assert!(p.backoff(attempt) <= p.cap);
        }
        let samples: std::collections::BTreeSet<u128> =
            (0..20).map(|_| p.backoff(5).as_micros()).collect();
        assert!(samples.len() > 10, "jitter spreads retries");
    }
}
