//! An OpenTelemetry trace receiver: the OTLP/HTTP endpoint `POST /v1/traces`
//! a collector offers, decoding the protobuf export requests the services
//! send and keeping every span they carried.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use tokio::net::TcpListener;

/// One received span, ids in lowercase hex as in `traceparent`.
#[derive(Clone, Debug)]
pub struct Span {
    /// The `service.name` of the process that sent it.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The spans it links to: (trace id, span id).
    pub links: Vec<(String, String)>,
    /// Attribute values rendered as text (numbers in decimal).
    pub attributes: BTreeMap<String, String>,
    pub failed: bool,
    /// Nanoseconds since the epoch.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span {
    /// An attribute's value, if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// How long it took.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.end_ns.saturating_sub(self.start_ns))
    }
}

/// The running receiver.
#[derive(Clone)]
pub struct OtlpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl OtlpSink {
    /// Listens on `addr` (port 0 picks one).
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self { addr, spans })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter adds
    /// `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The spans received since the last call, no longer kept.
    pub fn take(&self) -> Vec<Span> {
        std::mem::take(
            &mut *self
                .spans
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

async fn export(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .and_then(|attribute| attribute.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            received.push(Span {
                service: service.clone(),
                kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                links: span
                    .links
                    .iter()
                    .map(|link| (hex(&link.trace_id), hex(&link.span_id)))
                    .collect(),
                attributes: attributes(&span.attributes),
                failed: span
                    .status
                    .is_some_and(|status| status.code == SpanStatus::Error as i32),
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                name: span.name,
            });
        }
    }
    spans
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .extend(received);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref()?))))
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One trace as an indented tree, children under their parent in the order
/// they started; spans whose parent is not among them are roots.
pub fn render(spans: &[Span]) -> String {
    let mut sorted: Vec<&Span> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start_ns);
    let known: std::collections::HashSet<&str> =
        sorted.iter().map(|s| s.span_id.as_str()).collect();
    let mut out = String::new();
    if let Some(first) = sorted.first() {
        out.push_str(&format!("trace {}\n", first.trace_id));
    }
    let roots = sorted
        .iter()
        .filter(|s| !known.contains(s.parent_span_id.as_str()));
    for root in roots {
        render_under(root, &sorted, 1, &mut out);
    }
    out
}

fn render_under(span: &Span, all: &[&Span], depth: usize, out: &mut String) {
    let mut line = format!(
        "{:indent$}{}  {}",
        "",
        span.service,
        span.name,
        indent = depth * 2
    );
    let details = [
        span.attribute("http.response.status_code")
            .map(str::to_owned),
        span.attribute("command.verdict").map(str::to_owned),
        span.attribute("messaging.destination.partition.id")
            .zip(span.attribute("messaging.kafka.offset"))
            .map(|(partition, offset)| format!("partition {partition} offset {offset}")),
        span.failed.then(|| "FAILED".to_owned()),
        Some(format!("{:.1} ms", span.duration().as_secs_f64() * 1e3)),
    ];
    for detail in details.into_iter().flatten() {
        line.push_str("  ");
        line.push_str(&detail);
    }
    out.push_str(&line);
    out.push('\n');
    for child in all.iter().filter(|s| s.parent_span_id == span.span_id) {
        render_under(child, all, depth + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::{Span, render};
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

    fn span(service: &str, name: &str, id: &str, parent: &str, start: u64) -> Span {
        Span {
            service: service.into(),
            name: name.into(),
            kind: SpanKind::Internal,
            trace_id: "t1".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            links: Vec::new(),
            attributes: Default::default(),
            failed: false,
            start_ns: start,
            end_ns: start + 2_000_000,
        }
    }

    #[test]
    fn a_trace_renders_as_a_tree_in_start_order() {
        let mut fold = span("projector", "process events", "b", "a", 20);
        fold.attributes
            .insert("command.verdict".into(), "accepted".into());
        let spans = [
            span("notifier", "deliver webhook", "d", "b", 40),
            span("order-service", "POST /orders", "a", "caller", 10),
            span("notifier", "deliver email", "c", "b", 30),
            fold,
        ];
        assert_eq!(
            render(&spans),
            "trace t1\n\
             \x20 order-service  POST /orders  2.0 ms\n\
             \x20   projector  process events  accepted  2.0 ms\n\
             \x20     notifier  deliver email  2.0 ms\n\
             \x20     notifier  deliver webhook  2.0 ms\n"
        );
    }
}
