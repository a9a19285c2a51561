//! One hop of a trace as an OpenTelemetry span, exported only when the
//! process turned export on ([`enable_export`]; `service_kit::telemetry`
//! does when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
//!
//! The span's own ids become the `traceparent` the hop hands on, so what a
//! record or a webhook carries names a span the trace backend has. With
//! export off, a hop costs one atomic load and hands on the ids it was given.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, global};

use super::TraceParent;

pub use opentelemetry::trace::SpanKind as Kind;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Makes every hop from now on an exported span, through the global tracer
/// provider the caller installed.
pub fn enable_export() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// Whether hops are exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// A hop in flight; the span ends when it is dropped.
pub struct Hop {
    trace: TraceParent,
    span: Option<global::BoxedSpan>,
}

impl Hop {
    /// Starts a hop as a child of `parent` (a new trace without one).
    /// `describe` gives its span's name and attributes, and is only called
    /// when exporting; with export off the hop's traceparent is
    /// `unexported`, ids the caller chose.
    pub fn start(
        kind: SpanKind,
        parent: Option<&TraceParent>,
        unexported: impl FnOnce() -> TraceParent,
        describe: impl FnOnce() -> (String, Vec<KeyValue>),
    ) -> Self {
        if !exporting() {
            return Self {
                trace: unexported(),
                span: None,
            };
        }
        let tracer = global::tracer("kafka-orders");
        let (name, attributes) = describe();
        let mut builder = tracer
            .span_builder(name)
            .with_kind(kind.clone())
            .with_attributes(attributes);
        let context = match parent.map(remote) {
            Some(parent) => {
                // A consumer's span is linked to the producer's as well, as
                // the messaging conventions ask.
                if kind == SpanKind::Consumer {
                    builder = builder.with_links(vec![Link::with_context(parent.clone())]);
                }
                Context::new().with_remote_span_context(parent)
            }
            None => Context::new(),
        };
        let span = builder.start_with_context(&tracer, &context);
        let own = span.span_context();
        if !own.is_valid() {
            // No provider installed after all: nothing to hand on but ours.
            return Self {
                trace: unexported(),
                span: None,
            };
        }
        Self {
            trace: ids(own),
            span: Some(span),
        }
    }

    /// Work on many records at once (a consumer's batch) as a span of a
    /// trace of its own, linked to the span each record names, as the
    /// messaging conventions ask. `None` unless exporting.
    pub fn batch(
        kind: SpanKind,
        records: impl Iterator<Item = TraceParent>,
        describe: impl FnOnce() -> (String, Vec<KeyValue>),
    ) -> Option<Self> {
        if !exporting() {
            return None;
        }
        let tracer = global::tracer("kafka-orders");
        let (name, attributes) = describe();
        let links = records
            .map(|record| Link::with_context(remote(&record)))
            .collect();
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(&tracer, &Context::new());
        let (valid, trace) = (span.span_context().is_valid(), ids(span.span_context()));
        valid.then(|| Self {
            trace,
            span: Some(span),
        })
    }

    /// The traceparent to hand on: this hop as the parent of the next.
    pub fn trace(&self) -> TraceParent {
        self.trace
    }

    /// Adds an attribute known only later (a response status).
    pub fn set_attribute(&mut self, attribute: impl FnOnce() -> KeyValue) {
        if let Some(span) = &mut self.span {
            span.set_attribute(attribute());
        }
    }

    /// Marks the hop failed.
    pub fn set_error(&mut self, description: impl FnOnce() -> String) {
        if let Some(span) = &mut self.span {
            span.set_status(Status::error(description()));
        }
    }
}

/// The attributes OpenTelemetry's messaging conventions give a Kafka
/// consumer's `process` span.
pub fn processing(topic: &str, partition: i32, group: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.operation.type", "process"),
        KeyValue::new("messaging.operation.name", "process"),
        KeyValue::new("messaging.destination.name", topic.to_owned()),
        KeyValue::new("messaging.destination.partition.id", partition.to_string()),
        KeyValue::new("messaging.consumer.group.name", group.to_owned()),
    ]
}

fn ids(span: &SpanContext) -> TraceParent {
    TraceParent {
        trace_id: span.trace_id().to_bytes(),
        span_id: span.span_id().to_bytes(),
        flags: span.trace_flags().to_u8(),
    }
}

fn remote(parent: &TraceParent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    )
}
