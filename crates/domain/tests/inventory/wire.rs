//! The inventory's wire format: a golden file per event type, and decoding
//! refuses what it must, as for orders.

use chrono::{TimeZone, Utc};
use domain::aggregate::schemas::TaggedEvent;
use domain::aggregate::{DecodeError, Envelope, EventPayload};
use domain::inventory::{InventoryEvent, stock_id};
use uuid::Uuid;

use crate::golden::{assert_every_type_sampled, assert_golden, golden_path};
use crate::{created, order, sku};

const INVENTORY: &str = "inventory";

/// One event of every type. The match makes a new event type fail to compile
/// here until it has a sample, and so a golden file.
fn samples() -> Vec<InventoryEvent> {
    let all = vec![
        created(),
        InventoryEvent::StockReceived { units: 30 },
        InventoryEvent::StockReserved {
            order_id: order(1),
            units: 3,
        },
        InventoryEvent::ReservationReleased {
            order_id: order(1),
            units: 3,
        },
        InventoryEvent::ReservationCommitted {
            order_id: order(2),
            units: 2,
        },
    ];
    for event in &all {
        match event {
            InventoryEvent::StockCreated { .. }
            | InventoryEvent::StockReceived { .. }
            | InventoryEvent::StockReserved { .. }
            | InventoryEvent::ReservationReleased { .. }
            | InventoryEvent::ReservationCommitted { .. } => {}
        }
    }
    all
}

fn envelope(event: InventoryEvent) -> Envelope<InventoryEvent> {
    Envelope {
        event_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00a1),
        aggregate_id: stock_id(&sku()),
        version: 1,
        occurred_at: Utc
            .with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .single()
            .expect("a valid date"),
        command_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00c0),
        correlation_id: Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_00d0),
        event,
    }
}

fn golden_name(event: &InventoryEvent) -> String {
    format!(
        "inventory/{}.v{}.json",
        event.event_type(),
        event.schema_version()
    )
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: Vec<&str> = samples().iter().map(EventPayload::event_type).collect();
    assert_every_type_sampled(&sampled, InventoryEvent::SCHEMAS);
}

#[test]
fn every_event_type_encodes_to_its_golden_bytes_and_the_file_decodes_back() {
    for event in samples() {
        let name = golden_name(&event);
        let envelope = envelope(event);
        assert_golden(&name, &envelope.encode(INVENTORY));
        let file = std::fs::read(golden_path(&name)).expect("the golden file");
        assert_eq!(
            Envelope::decode(&file, INVENTORY),
            Ok(envelope),
            "{name} decodes to its sample"
        );
    }
}

#[test]
fn an_order_envelope_is_not_an_inventory_event_and_newer_schemas_wait() {
    let bytes = envelope(created()).encode(INVENTORY);
    let error = Envelope::<InventoryEvent>::decode(&bytes, "order").expect_err("another type");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error}");

    let mut json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    json["schema_version"] = 2.into();
    let error = Envelope::<InventoryEvent>::decode(json.to_string().as_bytes(), INVENTORY)
        .expect_err("newer");
    assert!(error.needs_newer_code(), "{error}");

    json["schema_version"] = 1.into();
    json["event_type"] = "StockReceived".into();
    json["data"] = serde_json::json!({"units": -1});
    let error = Envelope::<InventoryEvent>::decode(json.to_string().as_bytes(), INVENTORY)
        .expect_err("negative units");
    assert!(matches!(error, DecodeError::Malformed(_)), "{error}");
}
