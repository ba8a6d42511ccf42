//! Retrying throttled requests: a busy API server answers 429 Too Many Requests (API Priority
//! and Fairness), or 503, with a `Retry-After` header. Every request of the client (lists, watches,
//! patches, exec upgrades) is retried a bounded number of times, waiting the longer of our
//! exponential backoff and the server's `Retry-After` (capped, so a server asking for an hour
//! cannot hang the tool); after that the server's answer reaches the caller, which says in one
//! sentence that the server kept throttling ([`throttled_sentence`]).
//!
//! kube-rs has a retry layer of its own (on by default) that retries up to 15 times with a
//! backoff growing to 1000 s: a permanently throttling server would keep the tool silent for
//! minutes. It is switched off in favour of this one.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use tower::retry::Policy;

/// Retries after the first answer.
pub const MAX_RETRIES: u32 = 5;
/// First backoff; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// The longest `Retry-After` honoured for one wait.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The retry policy (one per request: tower clones it for each call).
#[derive(Debug, Clone, Default)]
pub struct ThrottleRetry {
    attempt: u32,
}

/// Whether an answer means "come back later": 429 always; 503 only with `Retry-After` (a busy
/// apiserver), not the node proxy's 503 for a kubelet it cannot reach, which would only wait.
fn retryable(status: StatusCode, has_retry_after: bool) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && has_retry_after)
}

/// The wait before retry number `attempt` (0-based): the longer of our backoff and the server's
/// `Retry-After` (whole seconds, capped at [`MAX_RETRY_AFTER`]).
pub fn delay(attempt: u32, retry_after: Option<&str>) -> Duration {
    let backoff = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let server = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
        .unwrap_or(Duration::ZERO);
    backoff.max(server)
}

impl<B, E> Policy<Request<Body>, Response<B>, E> for ThrottleRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<Body>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        let resp = result.as_ref().ok()?;
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok());
        if !retryable(resp.status(), retry_after.is_some()) || self.attempt >= MAX_RETRIES {
            return None;
        }
        let wait = delay(self.attempt, retry_after);
        self.attempt += 1;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Streaming bodies cannot be sent twice: such requests are not retried.
        let body = req.body().try_clone()?;
        let mut builder = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version());
        if let Some(h) = builder.headers_mut() {
            h.extend(req.headers().clone());
        }
        let mut out = builder.body(body).ok()?;
        *out.extensions_mut() = req.extensions().clone();
        Some(out)
    }
}

/// Build a client whose requests are retried by [`ThrottleRetry`] (kube-rs's own retry off).
pub fn client_with_retry(cfg: &kube::Config) -> Result<kube::Client, kube::Error> {
    let mut cfg = cfg.clone();
    cfg.default_retry = false;
    let server = cfg.cluster_url.to_string();
    let builder = kube::client::ClientBuilder::try_from(cfg)?;
    Ok(builder
        // `-v`: innermost, so each retry is a line of its own.
        .with_layer(&crate::diag::HttpLogLayer::new(&server))
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(ThrottleRetry::default()))
        .build())
}

/// A request the server still throttled after our retries, as one sentence; `None` for any
/// other error.
pub fn throttled_sentence(e: &kube::Error) -> Option<String> {
    let kube::Error::Api(s) = e else {
        return None;
    };
    if s.code != 429 {
        return None;
    }
    let said = if s.message.is_empty() {
        String::new()
    } else {
        format!(" (it said: {})", s.message)
    };
    Some(format!(
        "the Kubernetes API server is throttling requests: it still answered 429 Too Many Requests after {MAX_RETRIES} retries with backoff{said}; try again later or ask the cluster admin about API Priority and Fairness limits"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, retry_after: Option<&str>) -> Result<Response<()>, ()> {
        let mut b = Response::builder().status(code);
        if let Some(r) = retry_after {
            b = b.header("Retry-After", r);
        }
        Ok(b.body(()).unwrap())
    }

    #[test]
    fn delays_grow_and_honour_retry_after_within_a_cap() {
        assert_eq!(delay(0, None), Duration::from_millis(200));
        assert_eq!(delay(1, None), Duration::from_millis(400));
        assert_eq!(delay(5, None), Duration::from_secs(4));
        assert_eq!(delay(30, None), Duration::from_secs(4));
        assert_eq!(delay(0, Some("2")), Duration::from_secs(2));
        assert_eq!(delay(4, Some("1")), Duration::from_millis(3200));
        assert_eq!(delay(0, Some("3600")), MAX_RETRY_AFTER);
        assert_eq!(delay(0, Some("soon")), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn retries_429_and_503_a_bounded_number_of_times() {
        let mut p = ThrottleRetry::default();
        let mut req = Request::new(Body::empty());
        for _ in 0..MAX_RETRIES {
            assert!(p.retry(&mut req, &mut answer(429, Some("0"))).is_some());
        }
        assert!(p.retry(&mut req, &mut answer(429, Some("0"))).is_none());
        let mut p = ThrottleRetry::default();
        assert!(p.retry(&mut req, &mut answer(503, Some("1"))).is_some());
        // A node proxy's 503 (no Retry-After: the kubelet is unreachable) is not waited on.
        assert!(ThrottleRetry::default()
            .retry(&mut req, &mut answer(503, None))
            .is_none());
        for code in [200, 201, 403, 404, 409, 410, 500] {
            assert!(
                ThrottleRetry::default()
                    .retry(&mut req, &mut answer(code, None))
                    .is_none(),
                "{code}"
            );
        }
        assert!(ThrottleRetry::default()
            .retry(&mut req, &mut Err::<Response<()>, ()>(()))
            .is_none());
    }

    #[test]
    fn requests_with_a_body_are_cloned_whole() {
        let mut p = ThrottleRetry::default();
        let req = Request::builder()
            .method("PATCH")
            .uri("/apis/kubevirt.io/v1/namespaces/a/virtualmachines/b")
            .header("content-type", "application/merge-patch+json")
            .body(Body::from(b"{}".to_vec()))
            .unwrap();
        let c =
            <ThrottleRetry as Policy<_, Response<()>, ()>>::clone_request(&mut p, &req).unwrap();
        assert_eq!(c.method(), "PATCH");
        assert_eq!(c.uri(), req.uri());
        assert_eq!(c.headers()["content-type"], "application/merge-patch+json");
    }

    #[test]
    fn a_lasting_429_is_one_sentence() {
        let e = kube::Error::Api(
            kube::core::Status::failure(
                "Too many requests, please try again later.",
                "TooManyRequests",
            )
            .with_code(429)
            .boxed(),
        );
        let s = throttled_sentence(&e).unwrap();
        assert!(s.contains("429 Too Many Requests after 5 retries"), "{s}");
        assert!(
            s.contains("Too many requests, please try again later."),
            "{s}"
        );
        let other = kube::Error::Api(
            kube::core::Status::failure("no", "Forbidden")
                .with_code(403)
                .boxed(),
        );
        assert_eq!(throttled_sentence(&other), None);
    }
}
