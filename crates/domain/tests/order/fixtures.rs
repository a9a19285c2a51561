//! Small builders that keep tests about one thing each.

use chrono::{DateTime, TimeZone, Utc};
use domain::aggregate::{CommandBatch, CommandMeta};
use domain::order::{
    CancelReason, Carrier, CustomerId, Email, LineItem, OrderCommand, OrderEvent, Quantity, Sku,
    TrackingNumber, UnitPrice,
};
use uuid::Uuid;

pub const ORDER_ID: Uuid = Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_0001);

pub fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("a valid date")
}

pub fn sku(text: &str) -> Sku {
    Sku::parse(text).expect("a valid sku")
}

pub fn line(text: &str, quantity: u64, unit_price_cents: u64) -> LineItem {
    LineItem {
        sku: sku(text),
        quantity: Quantity::parse(quantity).expect("a valid quantity"),
        unit_price: UnitPrice::parse(unit_price_cents).expect("a valid price"),
    }
}

pub fn place(items: Vec<LineItem>) -> OrderCommand {
    OrderCommand::Place {
        order_id: ORDER_ID,
        customer_id: CustomerId::parse("customer-7").expect("valid"),
        email: Email::parse("ada@example.com").expect("valid"),
        items,
    }
}

pub fn placed(items: Vec<LineItem>) -> OrderEvent {
    OrderEvent::OrderPlaced {
        order_id: ORDER_ID,
        customer_id: CustomerId::parse("customer-7").expect("valid"),
        email: Email::parse("ada@example.com").expect("valid"),
        items,
    }
}

pub fn placed_with_a_book() -> OrderEvent {
    placed(vec![line("BOOK-1", 2, 1_500)])
}

pub fn ship() -> OrderCommand {
    OrderCommand::Ship {
        carrier: Carrier::parse("DHL").expect("valid"),
        tracking_number: TrackingNumber::parse("JD014600006281123").expect("valid"),
    }
}

pub fn shipped() -> OrderEvent {
    OrderEvent::OrderShipped {
        carrier: Carrier::parse("DHL").expect("valid"),
        tracking_number: TrackingNumber::parse("JD014600006281123").expect("valid"),
    }
}

pub fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: CancelReason::parse("changed my mind").expect("valid"),
    }
}

pub fn cancelled() -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: CancelReason::parse("changed my mind").expect("valid"),
    }
}

/// A command's metadata with ids derived from `n`, so runs are reproducible.
pub fn meta(n: u128) -> CommandMeta {
    CommandMeta {
        aggregate_id: ORDER_ID,
        command_id: Uuid::from_u128(0xC000_0000 + n),
        correlation_id: Uuid::from_u128(0xD000_0000 + n),
        occurred_at: at() + chrono::Duration::seconds(n as i64),
    }
}

/// Event ids counting up from `start`.
pub fn event_ids(start: u128) -> impl FnMut() -> Uuid {
    let mut next = start;
    move || {
        next += 1;
        Uuid::from_u128(0xE000_0000 + next)
    }
}

pub fn batch(n: u128, base_version: u64, events: Vec<OrderEvent>) -> CommandBatch<OrderEvent> {
    CommandBatch::new(meta(n), base_version, events, event_ids(n * 1000))
        .expect("a non-empty batch")
}
