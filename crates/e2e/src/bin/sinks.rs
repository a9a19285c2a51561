//! Runs the local receivers of the notifier's effects for the demo: an SMTP
//! server and a webhook endpoint, printing each e-mail and webhook as it
//! arrives.

use std::net::SocketAddr;
use std::time::Duration;

use e2e::sinks::smtp::SmtpSink;
use e2e::sinks::webhook::{Behaviour, WebhookSink};
use notifier::signature::Secret;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let smtp_addr: SocketAddr = env_or("SINK_SMTP_ADDR", "127.0.0.1:2525").parse()?;
    let webhook_addr: SocketAddr = env_or("SINK_WEBHOOK_ADDR", "127.0.0.1:9000").parse()?;
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
    println!(
        "smtp sink on {}, webhook sink on {}",
        smtp.addr,
        hooks.url()
    );

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
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
