//! The ceiling: records of a command's size appended in shared transactions,
//! with no HTTP, no decide, no waiting for a verdict.

use std::sync::Arc;

use chrono::Utc;
use domain::aggregate::{CommandBatch, CommandMeta};
use domain::order::{CustomerId, Email, LineItem, OrderEvent, Quantity, Sku, UnitPrice};
use event_store::{
    AppendRecord, Appender, AppenderSettings, KafkaConfig, TopicSpec, ensure_topics,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::Pacer;
use crate::report::Report;
use crate::stop::Stop;

/// Where raw appends go, and what they carry.
#[derive(Clone)]
pub struct Target {
    appender: Appender,
    topic: String,
    payload: Arc<Vec<u8>>,
}

impl Target {
    /// A topic of its own (kept an hour), and an appender like order-service's.
    pub async fn start(kafka: KafkaConfig, prefix: &str) -> anyhow::Result<Self> {
        let topic = format!("{prefix}.loadgen-raw");
        ensure_topics(
            &kafka,
            &[TopicSpec::permanent_log(&topic, 6).config("retention.ms", "3600000")],
        )
        .await?;
        let appender = tokio::task::spawn_blocking(move || {
            Appender::start(
                &kafka,
                &format!("loadgen-raw-{}", Uuid::now_v7()),
                AppenderSettings::default(),
            )
        })
        .await??;
        Ok(Self {
            appender,
            topic,
            payload: Arc::new(sample_command()),
        })
    }
}

/// A placed order's record, as order-service would append it.
fn sample_command() -> Vec<u8> {
    let order_id = Uuid::now_v7();
    let event = OrderEvent::OrderPlaced {
        order_id,
        customer_id: CustomerId::parse("customer-1").expect("valid"),
        email: Email::parse("loadgen@example.com").expect("valid"),
        items: vec![LineItem {
            sku: Sku::parse("BOOK-1").expect("valid"),
            quantity: Quantity::parse(1).expect("valid"),
            unit_price: UnitPrice::parse(1500).expect("valid"),
        }],
    };
    let meta = CommandMeta {
        aggregate_id: order_id,
        command_id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        occurred_at: Utc::now(),
    };
    CommandBatch::new(meta, 0, vec![event], Uuid::now_v7)
        .expect("one event")
        .encode("order")
}

/// Appends until it is time to stop, pacing starts.
pub async fn drive(
    target: Target,
    pacer: Pacer,
    stop: Stop,
    report: Arc<Mutex<Report>>,
) -> anyhow::Result<()> {
    let mut ticks = stop.ticks(&pacer);
    while let Some(started) = ticks.next().await {
        let record = AppendRecord {
            topic: target.topic.clone(),
            key: Uuid::now_v7().to_string().into_bytes(),
            payload: target.payload.to_vec(),
            headers: Vec::new(),
        };
        let result = target.appender.append(record).await;
        let outcome = if result.is_ok() { "appended" } else { "failed" };
        report
            .lock()
            .await
            .record(started.elapsed(), outcome, result.is_ok());
    }
    Ok(())
}
