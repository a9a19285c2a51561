//! Performing one attempt of an effect, and what its answer means.

use std::time::{Duration, SystemTime};

use event_store::trace_context::TRACEPARENT;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

use service_kit::problem::error_chain;

use crate::effects::{Effect, Kind};
use crate::ledger::SMTP;
use crate::signature::Secret;

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver took it (2xx, or the SMTP server accepted the mail).
    Delivered,
    /// Try again later: after `after` if the receiver said so.
    Retry {
        /// `Retry-After`, when given.
        after: Option<Duration>,
        /// What went wrong.
        error: String,
    },
    /// The endpoint is gone for good (410): stop sending to it.
    Gone(String),
    /// Will never succeed (a malformed address, a permanent SMTP refusal).
    Permanent(String),
}

/// A webhook endpoint and its secret.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    /// Where webhooks are POSTed.
    pub url: String,
    /// Signs them.
    pub secret: Secret,
}

/// Sends effects out.
#[derive(Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    webhooks: Vec<WebhookTarget>,
}

impl Deliverer {
    /// A deliverer for an SMTP server (plain, as on localhost) and the
    /// webhook endpoints (every webhook goes to each); each attempt may take
    /// up to `timeout`.
    pub fn new(
        smtp_host: &str,
        smtp_port: u16,
        from: &str,
        webhooks: Vec<WebhookTarget>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would be followed as a GET without the body, and the
            // webhook counted delivered: Standard Webhooks treats 3xx as a failure.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp_host)
            .port(smtp_port)
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("--mail-from `{from}`: {e}"))?;
        Ok(Self {
            http,
            smtp,
            from,
            webhooks,
        })
    }

    /// The webhook endpoints.
    pub fn webhooks(&self) -> &[WebhookTarget] {
        &self.webhooks
    }

    /// One attempt at `effect` to `destination` ([`SMTP`] or a webhook
    /// endpoint's URL).
    pub async fn attempt(&self, effect: &Effect, destination: &str) -> Attempt {
        match effect.kind {
            Kind::Email if destination == SMTP => self.email(effect).await,
            Kind::Webhook => match self.webhooks.iter().find(|t| t.url == destination) {
                Some(target) => {
                    self.webhook_attempt(target, effect, chrono::Utc::now().timestamp())
                        .await
                }
                None => Attempt::Permanent(format!("{destination} is not a configured endpoint")),
            },
            Kind::Email => {
                Attempt::Permanent(format!("e-mail to {destination}: only {SMTP} sends e-mail"))
            }
        }
    }

    /// One attempt at an e-mail.
    pub async fn email(&self, effect: &Effect) -> Attempt {
        let Some(email) = &effect.email else {
            return Attempt::Permanent("an e-mail effect without an e-mail".into());
        };
        let to = match email.to.parse() {
            Ok(to) => to,
            Err(error) => return Attempt::Permanent(format!("recipient `{}`: {error}", email.to)),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            // Unique per effect and stable across retries: a receiver can
            // drop the rare duplicate.
            .message_id(Some(message_id(effect)))
            .header(ContentType::TEXT_PLAIN);
        let message = match &effect.traceparent {
            Some(traceparent) => message.header(Traceparent(traceparent.clone())),
            None => message,
        }
        .body(email.text.clone());
        let message = match message {
            Ok(message) => message,
            Err(error) => return Attempt::Permanent(error.to_string()),
        };
        match self.smtp.send(message).await {
            Ok(_) => Attempt::Delivered,
            Err(error) if error.is_permanent() => Attempt::Permanent(error.to_string()),
            Err(error) => Attempt::Retry {
                after: None,
                error: error_chain(&error),
            },
        }
    }

    /// One attempt at a webhook, signed per Standard Webhooks; `webhook-id`
    /// is the effect id, the same on every retry.
    pub async fn webhook_attempt(
        &self,
        target: &WebhookTarget,
        effect: &Effect,
        now: i64,
    ) -> Attempt {
        let signature = target.secret.sign(&effect.id, now, &effect.body);
        let mut request = self
            .http
            .post(&target.url)
            .header("content-type", "application/json")
            .header("webhook-id", &effect.id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature);
        if let Some(traceparent) = &effect.traceparent {
            request = request.header(TRACEPARENT, traceparent);
        }
        let sent = request.body(effect.body.clone()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Retry {
                    after: None,
                    error: describe(&target.url, &error),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        if status == StatusCode::GONE {
            return Attempt::Gone(format!("{} answered 410 Gone", target.url));
        }
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        Attempt::Retry {
            after,
            error: format!("{} answered {status}", target.url),
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP-date (a date already past
/// means now). `None` when it is neither.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Message-ID` of an e-mail effect: RFC 5322's `<dot-atom@dot-atom>`,
/// from the effect's kind and event (an effect id's `:` is not allowed there).
pub fn message_id(effect: &Effect) -> String {
    format!(
        "<{}.{}@notifier.orders>",
        effect.kind.as_str(),
        effect.event_id
    )
}

/// What went wrong with a request that got no answer, so that a timeout, a
/// refused connection and a reset read differently in the effects table.
fn describe(url: &str, error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{url}: request {what}: {}", error_chain(error))
}

/// The wait before attempt `attempt + 1`: exponential from `base`, capped,
/// with full jitter in its upper half (so retries of many effects spread).
pub fn backoff(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.min(16)).min(cap);
    let half = exponential / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::{backoff, retry_after};

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        // 2023-11-14T22:15:00Z is 1,700,000,100 s after the epoch.
        assert_eq!(
            retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now),
            Some(Duration::from_secs(100))
        );
        assert_eq!(
            retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date past is now"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 0..20 {
            let wait = backoff(base, attempt, cap);
            let full = base.saturating_mul(1 << attempt.min(16)).min(cap);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
    }
}

/// The e-mail header that carries the effect's trace context, as webhooks
/// carry `traceparent`.
#[derive(Clone)]
struct Traceparent(String);

impl Header for Traceparent {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Traceparent")
    }

    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(value.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
