//! Each API request is a span of its caller's trace (W3C `traceparent`), or
//! starts a trace; commands hand that span on to the records they append.
//! Exported as an OpenTelemetry server span when export is on.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use event_store::trace_context::hop::{Hop, Kind};
use event_store::trace_context::{TRACEPARENT, TraceParent};
use opentelemetry::KeyValue;

tokio::task_local! {
    /// The span of the request being answered.
    static REQUEST_SPAN: TraceParent;
}

/// Paths scraped by machines: no span of their own.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The span of the request this task answers, if it is traced.
pub fn request_span() -> Option<TraceParent> {
    REQUEST_SPAN.try_with(|span| *span).ok()
}

/// Runs the request inside its span.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    if route.as_deref().is_some_and(|r| UNTRACED.contains(&r)) {
        return next.run(request).await;
    }
    // An invalid `traceparent` starts a new trace, as the spec says.
    let caller = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| TraceParent::parse(value.to_str().ok()?));
    let mut hop = Hop::start(
        Kind::Server,
        caller.as_ref(),
        || caller.map_or_else(TraceParent::new_root, |parent| parent.child()),
        || {
            let method = request.method().as_str().to_owned();
            let mut attributes = vec![
                KeyValue::new("http.request.method", method.clone()),
                KeyValue::new("url.path", request.uri().path().to_owned()),
                KeyValue::new("url.scheme", "http"),
            ];
            let name = match &route {
                Some(route) => {
                    attributes.push(KeyValue::new("http.route", route.clone()));
                    format!("{method} {route}")
                }
                None => method,
            };
            (name, attributes)
        },
    );
    let response = REQUEST_SPAN.scope(hop.trace(), next.run(request)).await;
    let status = response.status();
    hop.set_attribute(|| KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
    if status.is_server_error() {
        hop.set_error(|| status.to_string());
    }
    response
}
