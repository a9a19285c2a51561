//! The lifecycle rules, one scenario each.

use domain::aggregate::testing::{Given, given};
use domain::aggregate::{ErrorKind, Refusal};
use domain::order::{
    MAX_LINES, OrderAggregate, OrderCommand, OrderError, OrderEvent, Sku, Status, evolve,
};

use crate::fixtures::*;

fn given_events(events: impl IntoIterator<Item = OrderEvent>) -> Given<OrderAggregate> {
    given::<OrderAggregate>(events)
}

fn illegal(verb: &'static str, status: Status, hint: &'static str) -> OrderError {
    OrderError::IllegalTransition { verb, status, hint }
}

#[test]
fn placing_an_order_records_its_lines() {
    let items = vec![line("BOOK-1", 2, 1_500), line("PEN_2", 10, 99)];
    given_events([])
        .when(place(items.clone()))
        .then([placed(items)]);
}

#[test]
fn a_placed_order_totals_its_lines() {
    let order = evolve(
        None,
        &placed(vec![line("BOOK-1", 2, 1_500), line("PEN_2", 10, 99)]),
    )
    .expect("placed");
    assert_eq!(order.status, Status::Placed);
    assert_eq!(order.total_cents, 2 * 1_500 + 10 * 99);
}

#[test]
fn placing_an_order_twice_is_rejected() {
    given_events([placed_with_a_book()])
        .when(place(vec![line("BOOK-1", 1, 1)]))
        .then_error(OrderError::AlreadyExists);
}

#[test]
fn placing_an_order_without_items_is_rejected() {
    given_events([])
        .when(place(vec![]))
        .then_error(OrderError::NoItems);
}

#[test]
fn placing_more_lines_than_the_limit_is_rejected() {
    let items = (0..=MAX_LINES)
        .map(|i| line(&format!("SKU-{i}"), 1, 1))
        .collect();
    given_events([])
        .when(place(items))
        .then_error(OrderError::TooManyLines);
}

#[test]
fn placing_the_same_sku_twice_is_rejected() {
    given_events([])
        .when(place(vec![line("BOOK-1", 1, 100), line("BOOK-1", 2, 100)]))
        .then_error(OrderError::DuplicateSku(sku("BOOK-1")));
}

#[test]
fn commands_for_an_order_that_was_never_placed_find_nothing() {
    for command in [
        OrderCommand::Confirm,
        OrderCommand::Deliver,
        ship(),
        cancel(),
    ] {
        given_events([])
            .when(command)
            .then_error(OrderError::NotFound);
    }
}

#[test]
fn adding_an_item_while_placed_adds_a_line() {
    given_events([placed_with_a_book()])
        .when(OrderCommand::AddItem {
            item: line("PEN-1", 3, 250),
        })
        .then([OrderEvent::ItemAdded {
            item: line("PEN-1", 3, 250),
        }]);
}

#[test]
fn adding_a_sku_already_in_the_order_raises_its_quantity() {
    let order = [
        placed_with_a_book(),
        OrderEvent::ItemAdded {
            item: line("BOOK-1", 3, 1_500),
        },
    ]
    .iter()
    .fold(None, evolve)
    .expect("placed");
    assert_eq!(order.lines, vec![line("BOOK-1", 5, 1_500)]);
    assert_eq!(order.total_cents, 5 * 1_500);
}

#[test]
fn adding_a_sku_at_another_price_is_rejected() {
    given_events([placed_with_a_book()])
        .when(OrderCommand::AddItem {
            item: line("BOOK-1", 1, 999),
        })
        .then_error(OrderError::PriceMismatch {
            sku: sku("BOOK-1"),
            existing_cents: 1_500,
        });
}

#[test]
fn adding_beyond_the_quantity_limit_is_rejected() {
    given_events([placed(vec![line("BOOK-1", 9_999, 1)])])
        .when(OrderCommand::AddItem {
            item: line("BOOK-1", 2, 1),
        })
        .then_error(OrderError::QuantityLimit {
            sku: sku("BOOK-1"),
            total: 10_001,
        });
}

#[test]
fn adding_a_line_to_a_full_order_is_rejected() {
    let full = (0..MAX_LINES)
        .map(|i| line(&format!("SKU-{i}"), 1, 1))
        .collect();
    given_events([placed(full)])
        .when(OrderCommand::AddItem {
            item: line("ONE-MORE", 1, 1),
        })
        .then_error(OrderError::TooManyLines);
}

#[test]
fn adding_items_to_a_confirmed_order_is_rejected() {
    given_events([placed_with_a_book(), OrderEvent::OrderConfirmed {}])
        .when(OrderCommand::AddItem {
            item: line("PEN-1", 1, 1),
        })
        .then_error(illegal("add items to", Status::Confirmed, ""));
}

#[test]
fn removing_a_line_while_placed_removes_it() {
    let two_lines = placed(vec![line("BOOK-1", 1, 100), line("PEN-1", 1, 5)]);
    given_events([two_lines.clone()])
        .when(OrderCommand::RemoveItem { sku: sku("PEN-1") })
        .then([OrderEvent::ItemRemoved { sku: sku("PEN-1") }]);

    let order = [two_lines, OrderEvent::ItemRemoved { sku: sku("PEN-1") }]
        .iter()
        .fold(None, evolve)
        .expect("placed");
    assert_eq!(order.lines, vec![line("BOOK-1", 1, 100)]);
    assert_eq!(order.total_cents, 100);
}

#[test]
fn removing_the_last_line_is_rejected() {
    given_events([placed_with_a_book()])
        .when(OrderCommand::RemoveItem { sku: sku("BOOK-1") })
        .then_error(OrderError::LastLine);
}

#[test]
fn removing_a_sku_that_is_not_in_the_order_is_rejected() {
    given_events([placed(vec![line("BOOK-1", 1, 100), line("PEN-1", 1, 5)])])
        .when(OrderCommand::RemoveItem { sku: sku("CUP-1") })
        .then_error(OrderError::SkuNotInOrder(sku("CUP-1")));
}

#[test]
fn confirming_a_placed_order_confirms_it() {
    given_events([placed_with_a_book()])
        .when(OrderCommand::Confirm)
        .then([OrderEvent::OrderConfirmed {}]);
}

#[test]
fn shipping_a_placed_order_asks_to_confirm_it_first() {
    let refusal = illegal("ship", Status::Placed, "; confirm it first");
    assert_eq!(
        refusal.to_string(),
        "cannot ship an order that is placed; confirm it first"
    );
    given_events([placed_with_a_book()])
        .when(ship())
        .then_error(refusal);
}

#[test]
fn shipping_a_confirmed_order_records_carrier_and_tracking_number() {
    given_events([
        placed_with_a_book(),
        OrderEvent::OrderConfirmed {},
        OrderEvent::OrderStockReserved {},
    ])
    .when(ship())
    .then([shipped()]);
}

#[test]
fn an_order_ships_only_once_its_stock_is_reserved() {
    given_events([placed_with_a_book(), OrderEvent::OrderConfirmed {}])
        .when(ship())
        .then_error(OrderError::StockNotReserved);
    assert_eq!(OrderError::StockNotReserved.kind(), ErrorKind::Conflict);
}

#[test]
fn delivering_a_confirmed_order_asks_to_ship_it_first() {
    given_events([placed_with_a_book(), OrderEvent::OrderConfirmed {}])
        .when(OrderCommand::Deliver)
        .then_error(illegal("deliver", Status::Confirmed, "; ship it first"));
}

#[test]
fn delivering_a_shipped_order_delivers_it() {
    given_events([
        placed_with_a_book(),
        OrderEvent::OrderConfirmed {},
        shipped(),
    ])
    .when(OrderCommand::Deliver)
    .then([OrderEvent::OrderDelivered {}]);
}

#[test]
fn cancelling_a_placed_or_a_confirmed_order_cancels_it() {
    given_events([placed_with_a_book()])
        .when(cancel())
        .then([cancelled()]);
    given_events([placed_with_a_book(), OrderEvent::OrderConfirmed {}])
        .when(cancel())
        .then([cancelled()]);
}

#[test]
fn cancelling_a_shipped_order_is_rejected() {
    given_events([
        placed_with_a_book(),
        OrderEvent::OrderConfirmed {},
        shipped(),
    ])
    .when(cancel())
    .then_error(illegal("cancel", Status::Shipped, ""));
}

#[test]
fn confirming_a_cancelled_order_is_rejected() {
    given_events([placed_with_a_book(), cancelled()])
        .when(OrderCommand::Confirm)
        .then_error(illegal("confirm", Status::Cancelled, ": it is final"));
}

#[test]
fn nothing_changes_a_delivered_order() {
    let delivered = [
        placed_with_a_book(),
        OrderEvent::OrderConfirmed {},
        shipped(),
        OrderEvent::OrderDelivered {},
    ];
    let commands = [
        OrderCommand::AddItem {
            item: line("PEN-1", 1, 1),
        },
        OrderCommand::RemoveItem { sku: sku("BOOK-1") },
        OrderCommand::Confirm,
        ship(),
        OrderCommand::Deliver,
        cancel(),
    ];
    for command in commands {
        let verb = command.verb();
        given_events(delivered.clone())
            .when(command)
            .then_error(illegal(verb, Status::Delivered, ": it is final"));
    }
}

#[test]
fn refusals_are_classified_for_callers() {
    assert_eq!(OrderError::NotFound.kind(), ErrorKind::NotFound);
    assert_eq!(OrderError::AlreadyExists.kind(), ErrorKind::Conflict);
    assert_eq!(
        illegal("ship", Status::Placed, "").kind(),
        ErrorKind::Conflict
    );
    // What the order's state refuses is a conflict (or, for a line it does
    // not have, not found); what no state would accept is invalid.
    assert_eq!(OrderError::LastLine.kind(), ErrorKind::Conflict);
    let sku = Sku::parse("BOOK-1").expect("valid");
    assert_eq!(
        OrderError::SkuNotInOrder(sku.clone()).kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        OrderError::PriceMismatch {
            sku: sku.clone(),
            existing_cents: 1
        }
        .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(OrderError::DuplicateSku(sku).kind(), ErrorKind::Invalid);
    assert_eq!(OrderError::NoItems.kind(), ErrorKind::Invalid);
}

#[test]
fn stock_reserved_is_recorded_once_on_a_confirmed_order() {
    given_events([placed_with_a_book(), OrderEvent::OrderConfirmed {}])
        .when(OrderCommand::RecordStockReserved)
        .then([OrderEvent::OrderStockReserved {}]);
    // Again: nothing more to record.
    given_events([
        placed_with_a_book(),
        OrderEvent::OrderConfirmed {},
        OrderEvent::OrderStockReserved {},
    ])
    .when(OrderCommand::RecordStockReserved)
    .then([]);
    // Not before the order is confirmed, nor once it is cancelled.
    given_events([placed_with_a_book()])
        .when(OrderCommand::RecordStockReserved)
        .then_error(illegal(
            "record stock reserved for",
            Status::Placed,
            "; confirm it first",
        ));
}
