//! Flags, each with an environment fallback and a localhost default.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::ledger::Mode;

/// The notifier's settings.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "notifier",
    about = "Sends the e-mails and webhooks of accepted events, each once."
)]
pub struct Config {
    /// Brokers and topics.
    #[command(flatten)]
    pub topics: service_kit::topics::TopicArgs,
    /// The consumer group of the notifier instances (default
    /// `<topic prefix>-notifier`: other topics, another group).
    #[arg(long, env = "NOTIFIER_GROUP_ID")]
    pub group_id: Option<String>,
    /// This instance's name (its dead-letter producer's transactional id).
    #[arg(long, env = "NOTIFIER_INSTANCE_ID", default_value = "notifier-0")]
    pub instance_id: String,
    /// PostgreSQL, for the effects table (schema `notifier`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://orders:orders@127.0.0.1:5432/orders"
    )]
    pub database_url: String,
    /// SMTP server (plain SMTP, as a local relay speaks it).
    #[arg(long, env = "SMTP_HOST", default_value = "127.0.0.1")]
    pub smtp_host: String,
    /// SMTP port.
    #[arg(long, env = "SMTP_PORT", default_value_t = 2525)]
    pub smtp_port: u16,
    /// The sender of every e-mail.
    #[arg(long, env = "MAIL_FROM", default_value = "Orders <orders@example.com>")]
    pub mail_from: String,
    /// Where webhooks go, one or more (comma-separated): each endpoint gets
    /// every webhook, in a delivery lane of its own. None are sent without it.
    #[arg(long, env = "WEBHOOK_URL", value_delimiter = ',')]
    pub webhook_url: Vec<String>,
    /// The Standard Webhooks signing secret (`whsec_...`) of the endpoints;
    /// required with --webhook-url.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Attempts per effect at most before it is failed and dead-lettered.
    #[arg(long, env = "NOTIFIER_MAX_ATTEMPTS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_attempts: u32,
    /// How long an effect is retried, in seconds from when it was recorded:
    /// no attempt is scheduled later (default a day).
    #[arg(long, env = "NOTIFIER_RETRY_FOR_S", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
    pub retry_for_s: u64,
    /// The first retry's wait in ms; it doubles per attempt, with jitter.
    #[arg(long, env = "NOTIFIER_BACKOFF_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub backoff_ms: u64,
    /// The longest wait between attempts in ms (also caps `Retry-After`).
    #[arg(long, env = "NOTIFIER_MAX_BACKOFF_MS", default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub max_backoff_ms: u64,
    /// How long one webhook request or SMTP conversation may take, in ms
    /// (receivers are commonly given 15 to 30 s).
    #[arg(long, env = "NOTIFIER_ATTEMPT_TIMEOUT_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub attempt_timeout_ms: u64,
    /// Effects attempted at once per destination (an entity's effects stay
    /// in order).
    #[arg(long, env = "NOTIFIER_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,
    /// Delivery mode of e-mails.
    #[arg(
        long,
        env = "NOTIFIER_EMAIL_MODE",
        value_enum,
        default_value = "at-least-once"
    )]
    pub email_mode: Mode,
    /// Delivery mode of webhooks.
    #[arg(
        long,
        env = "NOTIFIER_WEBHOOK_MODE",
        value_enum,
        default_value = "at-least-once"
    )]
    pub webhook_mode: Mode,
    /// Health, metrics and the operators' API.
    #[arg(long, env = "NOTIFIER_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    pub http_addr: SocketAddr,
}

impl Config {
    /// The consumer group: `--group-id`, or one named after the topics.
    pub fn group_id(&self) -> String {
        self.topics.group_id(self.group_id.as_deref(), "notifier")
    }

    /// The retry policy from the flags.
    pub fn policy(&self) -> crate::lanes::Policy {
        crate::lanes::Policy {
            max_attempts: self.max_attempts,
            retry_for: Duration::from_secs(self.retry_for_s),
            base_backoff: Duration::from_millis(self.backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms.max(self.backoff_ms)),
            attempt_timeout: Duration::from_millis(self.attempt_timeout_ms),
            concurrency: usize::try_from(self.concurrency).unwrap_or(16),
            email_mode: self.email_mode,
            webhook_mode: self.webhook_mode,
        }
    }

    /// The notifier's dead-letter topic.
    pub fn dlq_topic(&self) -> String {
        format!("{}.notifier.dlq", self.topics.topic_prefix)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    #[test]
    fn the_group_follows_the_topics_unless_named() {
        let default = Config::try_parse_from(["notifier"]).expect("defaults parse");
        assert_eq!(default.group_id(), "orders-notifier");
        let other = Config::try_parse_from(["notifier", "--topic-prefix=demo-7"]).expect("parses");
        assert_eq!(other.group_id(), "demo-7-notifier");
    }
}
