//! The wire format is a contract: golden files pin the bytes of every event
//! type, old schema versions still decode, and anything else is refused with
//! the right class of error.
//!
//! After a deliberate format change, run with `BLESS=1` to rewrite the files,
//! and add an upcaster for the old version.

use domain::aggregate::schemas::TaggedEvent;
use domain::aggregate::{CommandBatch, DecodeError, Envelope, EventPayload};
use domain::order::{OrderEvent, Sku, ValueError};
use uuid::Uuid;

use crate::fixtures::*;
use crate::golden::{assert_every_type_sampled, assert_golden, golden_path};

const ORDER: &str = "order";

/// One event of every type. The match makes a new event type fail to compile
/// here until it has a sample, and so a golden file.
fn samples() -> Vec<OrderEvent> {
    let all = vec![
        placed(vec![line("BOOK-1", 2, 1_500), line("PEN_2", 10, 99)]),
        OrderEvent::ItemAdded {
            item: line("CUP.3", 1, 450),
        },
        OrderEvent::ItemRemoved { sku: sku("PEN_2") },
        OrderEvent::OrderConfirmed {},
        shipped(),
        OrderEvent::OrderDelivered {},
        cancelled(),
        OrderEvent::OrderStockReserved {},
    ];
    for event in &all {
        match event {
            OrderEvent::OrderPlaced { .. }
            | OrderEvent::ItemAdded { .. }
            | OrderEvent::ItemRemoved { .. }
            | OrderEvent::OrderConfirmed {}
            | OrderEvent::OrderStockReserved {}
            | OrderEvent::OrderShipped { .. }
            | OrderEvent::OrderDelivered {}
            | OrderEvent::OrderCancelled { .. } => {}
        }
    }
    all
}

fn envelope(version: u64, event: OrderEvent) -> Envelope<OrderEvent> {
    Envelope {
        event_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00a0 + u128::from(version)),
        aggregate_id: ORDER_ID,
        version,
        occurred_at: at(),
        command_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00c0),
        correlation_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00d0),
        event,
    }
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: Vec<&str> = samples().iter().map(EventPayload::event_type).collect();
    assert_every_type_sampled(&sampled, OrderEvent::SCHEMAS);
}

#[test]
fn every_event_type_encodes_to_its_golden_bytes_and_back() {
    for event in samples() {
        let envelope = envelope(1, event);
        let name = format!(
            "{}.v{}.json",
            envelope.event.event_type(),
            envelope.event.schema_version()
        );
        let bytes = envelope.encode(ORDER);
        assert_golden(&name, &bytes);
        assert_eq!(
            Envelope::decode(&bytes, ORDER),
            Ok(envelope),
            "{name} round trip"
        );
    }
}

#[test]
fn a_command_batch_is_one_json_array_of_envelopes() {
    let batch = CommandBatch::from_envelopes(vec![
        envelope(3, OrderEvent::OrderConfirmed {}),
        envelope(4, shipped()),
    ])
    .expect("a valid batch");
    let bytes = batch.encode(ORDER);
    assert_golden("batch.json", &bytes);
    assert_eq!(CommandBatch::decode(&bytes, ORDER), Ok(batch));
}

#[test]
fn item_added_written_with_schema_version_1_is_upcast_on_read() {
    let old = std::fs::read(golden_path("ItemAdded.v1.json")).expect("the v1 golden file");
    let decoded = Envelope::<OrderEvent>::decode(&old, ORDER).expect("v1 decodes");
    assert_eq!(
        decoded.event,
        OrderEvent::ItemAdded {
            item: line("CUP.3", 1, 450)
        }
    );
    // Written again, it is the current version.
    assert_eq!(decoded.event.schema_version(), 2);
}

fn decode(json: &str) -> Result<Envelope<OrderEvent>, DecodeError> {
    Envelope::decode(json.as_bytes(), ORDER)
}

/// The golden `OrderConfirmed` envelope with one field replaced.
fn confirmed_with(field: &str, value: serde_json::Value) -> String {
    let mut json: serde_json::Value =
        serde_json::from_slice(&envelope(1, OrderEvent::OrderConfirmed {}).encode(ORDER))
            .expect("json");
    json[field] = value;
    json.to_string()
}

#[test]
fn bytes_that_are_not_an_envelope_are_malformed() {
    for garbage in ["", "not json", "[]", "{}", r#"{"event_id": 5}"#] {
        let error = decode(garbage).expect_err(garbage);
        assert!(
            matches!(error, DecodeError::Malformed(_)),
            "{garbage}: {error}"
        );
        assert!(!error.needs_newer_code());
    }
}

#[test]
fn an_envelope_with_an_unknown_field_is_malformed() {
    let error =
        decode(&confirmed_with("surprise", serde_json::json!(1))).expect_err("unknown field");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
}

#[test]
fn an_envelope_of_another_aggregate_type_is_malformed() {
    let error =
        decode(&confirmed_with("aggregate_type", "invoice".into())).expect_err("wrong type");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
}

#[test]
fn event_data_that_breaks_a_value_rule_is_malformed() {
    let json = confirmed_with("event_type", "ItemRemoved".into());
    let json = json.replace(r#""data":{}"#, r#""data":{"sku":"has spaces"}"#);
    let error = decode(&json).expect_err("invalid sku");
    assert!(
        matches!(&error, DecodeError::Malformed(m) if m.contains("sku")),
        "{error}"
    );
}

#[test]
fn event_data_with_an_unknown_field_is_malformed() {
    let json = confirmed_with("data", serde_json::json!({"extra": true}));
    let error = decode(&json).expect_err("unknown data field");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
}

#[test]
fn an_unknown_event_type_needs_newer_code() {
    let error =
        decode(&confirmed_with("event_type", "OrderGiftWrapped".into())).expect_err("unknown type");
    assert!(
        matches!(error, DecodeError::UnknownEventType { .. }),
        "{error}"
    );
    assert!(error.needs_newer_code());
}

#[test]
fn a_newer_schema_version_needs_newer_code() {
    let error = decode(&confirmed_with("schema_version", 2.into())).expect_err("newer schema");
    assert_eq!(
        error,
        DecodeError::NewerSchema {
            event_type: "OrderConfirmed".into(),
            found: 2,
            known: 1
        }
    );
    assert!(error.needs_newer_code());
}

#[test]
fn a_batch_mixing_commands_or_skipping_versions_is_malformed() {
    let mut other_command = envelope(4, shipped());
    other_command.command_id = Uuid::nil();
    let gap = [
        envelope(3, OrderEvent::OrderConfirmed {}),
        envelope(5, shipped()),
    ];
    let mixed = [envelope(3, OrderEvent::OrderConfirmed {}), other_command];
    for envelopes in [gap, mixed] {
        let wire: Vec<serde_json::Value> = envelopes
            .iter()
            .map(|e| serde_json::from_slice(&e.encode(ORDER)).expect("json"))
            .collect();
        let bytes = serde_json::to_vec(&wire).expect("json");
        let error =
            CommandBatch::<OrderEvent>::decode(&bytes, ORDER).expect_err("inconsistent batch");
        assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
    }
    assert!(matches!(
        CommandBatch::<OrderEvent>::decode(b"[]", ORDER),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn values_refuse_what_breaks_their_rules_with_a_message_naming_the_field() {
    let error: ValueError = Sku::parse("").expect_err("empty");
    assert_eq!(
        error.to_string(),
        "sku must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
    );
    assert!(Sku::parse("a".repeat(65)).is_err());
    assert!(Sku::parse("a".repeat(64)).is_ok());
    assert!(domain::order::Quantity::parse(0).is_err());
    assert!(domain::order::Quantity::parse(10_001).is_err());
    assert!(domain::order::UnitPrice::parse(100_000_001).is_err());
    assert!(domain::order::UnitPrice::parse(0).is_ok());
    assert!(domain::order::Email::parse("no-at-sign").is_err());
    assert!(domain::order::Email::parse("a@b").is_err());
    assert!(domain::order::Email::parse("a b@example.com").is_err());
    assert!(domain::order::CustomerId::parse("   ").is_err());
    assert!(domain::order::CustomerId::parse("x".repeat(65)).is_err());
}
