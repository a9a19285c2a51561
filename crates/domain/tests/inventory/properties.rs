//! Laws of the stock over any sequence of commands: the counts always add
//! up, nothing is negative, and an order holds one reservation at most.

use domain::aggregate::{CommandBatch, CommandMeta, Snapshot, Verdict};
use domain::inventory::{InventoryAggregate, InventoryCommand as C, Stock, decide, evolve};
use proptest::prelude::*;
use uuid::Uuid;

use crate::{create, order, units};

/// Few orders and small amounts, so commands collide on purpose.
fn command() -> impl Strategy<Value = C> {
    prop_oneof![
        1 => Just(create()),
        3 => (1..=20u64).prop_map(|n| C::Restock { units: units(n) }),
        5 => (0..5u128, 1..=12u64).prop_map(|(o, n)| C::Reserve { order_id: order(o), units: units(n) }),
        2 => (0..5u128).prop_map(|o| C::Release { order_id: order(o) }),
        2 => (0..5u128).prop_map(|o| C::Commit { order_id: order(o) }),
    ]
}

fn assert_counts_add_up(stock: &Stock) {
    assert_eq!(
        stock.received,
        stock.available + stock.reserved() + stock.shipped,
        "received = available + reserved + shipped: {stock:?}"
    );
    assert!(
        stock.reservations.values().all(|units| *units > 0),
        "a reservation holds units"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_counts_add_up_after_every_accepted_event(commands in prop::collection::vec(command(), 0..80)) {
        let mut snapshot = Snapshot::<Option<Stock>>::default();
        for (n, command) in commands.iter().enumerate() {
            let Ok(events) = decide(command, &snapshot.state) else { continue };
            // Each event on its own: the law holds between the events of a command too.
            let mut state = snapshot.state.clone();
            for event in &events {
                state = evolve(state, event);
                if let Some(stock) = &state {
                    assert_counts_add_up(stock);
                }
            }
            let meta = CommandMeta {
                aggregate_id: Uuid::from_u128(7),
                command_id: Uuid::from_u128(n as u128 + 1),
                correlation_id: Uuid::from_u128(n as u128 + 1),
                occurred_at: chrono::DateTime::UNIX_EPOCH,
            };
            let mut event_ids = (0u128..).map(|i| Uuid::from_u128((n as u128) << 32 | i));
            let batch = CommandBatch::new(meta, snapshot.version, events, || event_ids.next().unwrap_or_default())
                .expect("events");
            let (next, verdict) = snapshot.apply::<InventoryAggregate>(&batch);
            let accepted = matches!(verdict, Verdict::Accepted { .. });
            prop_assert!(accepted, "a decided command is accepted: {:?}", verdict);
            prop_assert_eq!(&next.state, &state, "the fold is evolve");
            snapshot = next;
        }
    }

    #[test]
    fn a_reservation_is_granted_only_from_available_units(commands in prop::collection::vec(command(), 0..80)) {
        let mut state: Option<Stock> = None;
        for command in &commands {
            let before = state.clone();
            let Ok(events) = decide(command, &state) else { continue };
            state = events.iter().fold(state, evolve);
            if let (C::Reserve { order_id, units }, Some(before)) = (command, &before) {
                prop_assert!(u64::from(*units) <= before.available);
                prop_assert!(!before.reservations.contains_key(order_id), "held twice");
            }
        }
    }
}
