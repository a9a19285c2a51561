//! Runs the local receivers for the demo: an SMTP server and a webhook
//! endpoint (the notifier's effects), printing each e-mail and webhook as it
//! arrives, and an OTLP trace endpoint printing each request's trace as a
//! tree once it is complete.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use e2e::sinks::otlp::{self, OtlpSink, Span};
use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use notifier::signature::Secret;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smtp_addr: SocketAddr = env_or("SINK_SMTP_ADDR", "127.0.0.1:2525").parse()?;
    let webhook_addr: SocketAddr = env_or("SINK_WEBHOOK_ADDR", "127.0.0.1:9000").parse()?;
    let otlp_addr: SocketAddr = env_or("SINK_OTLP_ADDR", "127.0.0.1:4318").parse()?;
    let secret =
        Secret::parse(&env_or("WEBHOOK_SECRET", "")).map_err(|e| format!("WEBHOOK_SECRET: {e}"))?;
    let smtp = SmtpSink::start(smtp_addr).await?;
    // A little trouble, so retries show in the notifier's metrics.
    let behaviour = Behaviour {
        fail_percent: 10,
        throttle_percent: 2,
        ..Behaviour::default()
    };
    let hooks = WebhookSink::start(webhook_addr, secret, behaviour).await?;
    let traces = OtlpSink::start(otlp_addr).await?;
    println!(
        "smtp sink on {}, webhook sink on {}, OTLP traces on {}",
        smtp.addr,
        hooks.url(),
        traces.endpoint()
    );
    // Spans of each trace until it has been quiet for a while: the services
    // export in batches, each on its own schedule.
    let mut open: HashMap<String, (Instant, Vec<Span>)> = HashMap::new();

    let (mut mails, mut calls) = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tick.tick() => {}
        }
        let received = smtp.received();
        for mail in &received[mails..] {
            println!(
                "e-mail  to {}: {}",
                mail.to.join(", "),
                mail.header("Subject").unwrap_or("")
            );
        }
        mails = received.len();
        let received = hooks.received();
        for call in &received[calls..] {
            println!(
                "webhook {} -> {} (signature {})",
                call.id,
                call.status,
                if call.verified { "ok" } else { "BAD" }
            );
        }
        calls = received.len();
        for span in traces.take() {
            let (seen, spans) = open
                .entry(span.trace_id.clone())
                .or_insert_with(|| (Instant::now(), Vec::new()));
            *seen = Instant::now();
            spans.push(span);
        }
        let quiet: Vec<String> = open
            .iter()
            .filter(|(_, (seen, _))| seen.elapsed() > QUIET)
            .map(|(trace, _)| trace.clone())
            .collect();
        for trace in quiet {
            // Requests' traces; the read model's batches (traces of their
            // own, linked to the requests') would drown them.
            if let Some((_, spans)) = open.remove(&trace)
                && spans.iter().any(|s| s.kind == SpanKind::Server)
            {
                print!("{}", otlp::render(&spans));
            }
        }
    }
}

/// How long a trace gets no new span before it is printed: longer than the
/// exporters' default batch delay (5 s).
const QUIET: Duration = Duration::from_secs(6);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
