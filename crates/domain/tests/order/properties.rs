//! Laws of `decide` and `evolve` over any sequence of commands.

use domain::aggregate::{Snapshot, Verdict};
use domain::order::{
    CancelReason, Carrier, LineItem, MAX_LINES, Order, OrderAggregate, OrderCommand, OrderEvent,
    Quantity, Status, TrackingNumber, decide, evolve,
};
use proptest::prelude::*;

use crate::fixtures::*;

/// Few SKUs and prices, so commands collide on purpose.
pub fn line_item() -> impl Strategy<Value = LineItem> {
    (
        0..6usize,
        prop_oneof![1..=3u64, 9_990..=10_000u64],
        prop_oneof![Just(0u64), 1..=3u64, Just(100_000_000u64)],
    )
        .prop_map(|(sku, quantity, price)| line(&format!("SKU-{sku}"), quantity, price))
}

pub fn command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        1 => prop::collection::vec(line_item(), 0..4).prop_map(place),
        4 => line_item().prop_map(|item| OrderCommand::AddItem { item }),
        2 => (0..6usize).prop_map(|i| OrderCommand::RemoveItem { sku: sku(&format!("SKU-{i}")) }),
        2 => Just(OrderCommand::Confirm),
        1 => Just(OrderCommand::RecordStockReserved),
        2 => Just(OrderCommand::Ship {
            carrier: Carrier::parse("UPS").expect("valid"),
            tracking_number: TrackingNumber::parse("1Z999").expect("valid"),
        }),
        2 => Just(OrderCommand::Deliver),
        1 => Just(OrderCommand::Cancel { reason: CancelReason::parse("no longer needed").expect("valid") }),
    ]
}

/// The lifecycle as a table, written apart from `decide`: which event may
/// follow which status.
fn legal(before: Option<Status>, event: &OrderEvent) -> bool {
    use OrderEvent::*;
    matches!(
        (before, event),
        (None, OrderPlaced { .. })
            | (
                Some(Status::Placed),
                ItemAdded { .. } | ItemRemoved { .. } | OrderConfirmed {} | OrderCancelled { .. }
            )
            | (
                Some(Status::Confirmed),
                OrderStockReserved {} | OrderShipped { .. } | OrderCancelled { .. }
            )
            | (Some(Status::Shipped), OrderDelivered {})
    )
}

fn assert_well_formed(order: &Order) {
    assert!(
        !order.lines.is_empty() && order.lines.len() <= MAX_LINES,
        "1..=100 lines"
    );
    let mut skus: Vec<_> = order.lines.iter().map(|l| &l.sku).collect();
    skus.sort();
    skus.dedup();
    assert_eq!(skus.len(), order.lines.len(), "each sku once");
    assert!(
        order
            .lines
            .iter()
            .all(|l| l.quantity.get() <= Quantity::MAX)
    );
    let exact: u128 = order
        .lines
        .iter()
        .map(|l| u128::from(l.quantity.get()) * u128::from(l.unit_price.cents()))
        .sum();
    assert_eq!(
        u128::from(order.total_cents),
        exact,
        "the total is the exact sum"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn folding_the_accepted_events_reproduces_the_state(commands in prop::collection::vec(command(), 0..60)) {
        let mut snapshot = Snapshot::<Option<Order>>::default();
        let mut accepted = Vec::new();
        for (n, command) in commands.iter().enumerate() {
            let Ok(events) = decide(command, &snapshot.state) else { continue };
            // A command that decides nothing appends nothing.
            if events.is_empty() { continue; }
            let before = snapshot.state.as_ref().map(|o| o.status);
            let mut status = before;
            for event in &events {
                prop_assert!(legal(status, event), "{event:?} accepted after {status:?}");
                status = evolve(snapshot.state.clone(), event).map(|o| o.status);
            }
            let batch = batch(n as u128, snapshot.version, events);
            let (next, verdict) = snapshot.apply::<OrderAggregate>(&batch);
            prop_assert_eq!(verdict, Verdict::Accepted { first_version: batch.first_version(), last_version: batch.last_version() });
            snapshot = next;
            accepted.extend(batch.into_envelopes());
            if let Some(order) = &snapshot.state {
                assert_well_formed(order);
            }
        }

        let versions: Vec<u64> = accepted.iter().map(|e| e.version).collect();
        prop_assert_eq!(versions, (1..=accepted.len() as u64).collect::<Vec<_>>(), "gapless from 1");
        prop_assert_eq!(snapshot.version, accepted.len() as u64);
        let folded = accepted.iter().fold(None, |state, e| evolve(state, &e.event));
        prop_assert_eq!(&folded, &snapshot.state);

        // The fold's spliced encoding is the plain one, byte for byte.
        let state = serde_json::to_vec(&snapshot.state).expect("encodes");
        prop_assert_eq!(
            snapshot.encode_with_state(&state).expect("encodes"),
            serde_json::to_vec(&snapshot).expect("encodes")
        );
    }

    #[test]
    fn evolve_is_total_for_any_event_in_any_state(commands in prop::collection::vec(command(), 0..20), stray in command()) {
        // Events decided for one state, applied to an unrelated one, must not panic.
        let state = commands.iter().fold(None, |state: Option<Order>, command| {
            decide(command, &state).map(|events| events.iter().fold(state.clone(), evolve)).unwrap_or(state)
        });
        if let Ok(events) = decide(&stray, &state) {
            let _ = events.iter().fold(None, evolve);
        }
        let _ = evolve(state, &OrderEvent::OrderDelivered {});
    }
}
