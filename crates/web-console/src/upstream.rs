//! The services behind the console. The page's reads and commands go to
//! order-service's API as they are (`Idempotency-Key`, `If-Match`, the
//! answer's `ETag` and problem details included), so the console shows what
//! any client gets; the projector's, the notifier's and the fulfilment
//! workflow's operators' endpoints are read the same way.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use service_kit::Problem;

/// Request headers passed on.
const ASKED: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::IF_MATCH,
    HeaderName::from_static("idempotency-key"),
];

/// Answer headers passed back.
const ANSWERED: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ETAG,
    header::LOCATION,
    header::RETRY_AFTER,
];

/// One service's base URL and the client that calls it.
#[derive(Clone)]
pub struct Upstream {
    /// For error messages.
    name: &'static str,
    base_url: String,
    http: reqwest::Client,
}

impl Upstream {
    /// `name` for error messages, `base_url` without a trailing slash needed.
    pub fn new(name: &'static str, base_url: &str, http: reqwest::Client) -> Self {
        Self {
            name,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// A read of `path` (with `uri`'s query), answered as it came.
    pub async fn get(&self, path: &str, uri: &Uri) -> Response {
        self.forward(Method::GET, path, uri, &HeaderMap::new(), Bytes::new())
            .await
    }

    /// Sends the request to `path` (with `uri`'s query) and returns the
    /// answer as it came; 502 when the service does not answer.
    pub async fn forward(
        &self,
        method: Method,
        path: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let mut url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        if let Some(query) = uri.query() {
            url.push('?');
            url.push_str(query);
        }
        let mut request = self.http.request(method, url).body(body);
        for name in &ASKED {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(service = self.name, %error, "no answer");
                return Problem::new(StatusCode::BAD_GATEWAY)
                    .detail(format!("{} did not answer: {error}", self.name))
                    .into_response();
            }
        };
        let status = answer.status();
        let mut passed = HeaderMap::new();
        for name in &ANSWERED {
            if let Some(value) = answer.headers().get(name) {
                passed.insert(name, value.clone());
            }
        }
        match answer.bytes().await {
            Ok(body) => (status, passed, Body::from(body)).into_response(),
            Err(error) => Problem::new(StatusCode::BAD_GATEWAY)
                .detail(format!("{}'s answer broke off: {error}", self.name))
                .into_response(),
        }
    }
}
