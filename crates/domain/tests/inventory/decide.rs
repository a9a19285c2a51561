//! The stock's rules, one scenario each.

use domain::aggregate::testing::{Given, given};
use domain::aggregate::{ErrorKind, Refusal};
use domain::inventory::{
    InventoryAggregate, InventoryCommand as C, InventoryError, InventoryEvent as E, evolve,
    stock_id,
};

use crate::{create, created, order, sku, units};

fn given_events(events: impl IntoIterator<Item = E>) -> Given<InventoryAggregate> {
    given::<InventoryAggregate>(events)
}

fn received(n: u64) -> E {
    E::StockReceived { units: n }
}

fn reserved(o: u128, n: u64) -> E {
    E::StockReserved {
        order_id: order(o),
        units: n,
    }
}

#[test]
fn stock_is_created_once_with_nothing_on_hand() {
    given_events([]).when(create()).then([created()]);
    given_events([created()])
        .when(create())
        .then_error(InventoryError::AlreadyExists);
    let stock = evolve(None, &created()).expect("created");
    assert_eq!(
        (
            stock.received,
            stock.available,
            stock.reserved(),
            stock.shipped
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn every_other_command_needs_the_stock_to_exist() {
    for command in [
        C::Restock { units: units(1) },
        C::Reserve {
            order_id: order(1),
            units: units(1),
        },
        C::Release { order_id: order(1) },
        C::Commit { order_id: order(1) },
    ] {
        given_events([])
            .when(command)
            .then_error(InventoryError::NotFound);
    }
}

#[test]
fn restocked_units_become_available() {
    given_events([created()])
        .when(C::Restock { units: units(30) })
        .then([received(30)]);
}

#[test]
fn a_reservation_takes_available_units_and_is_refused_beyond_them() {
    given_events([created(), received(30)])
        .when(C::Reserve {
            order_id: order(1),
            units: units(30),
        })
        .then([reserved(1, 30)]);
    given_events([created(), received(30), reserved(1, 25)])
        .when(C::Reserve {
            order_id: order(2),
            units: units(6),
        })
        .then_error(InventoryError::Insufficient {
            available: 5,
            requested: 6,
        });
}

#[test]
fn an_order_holds_one_reservation_at_most() {
    given_events([created(), received(30), reserved(1, 2)])
        .when(C::Reserve {
            order_id: order(1),
            units: units(1),
        })
        .then_error(InventoryError::AlreadyReserved(order(1)));
}

#[test]
fn a_released_reservation_is_available_again_and_a_committed_one_is_shipped() {
    let past = [created(), received(30), reserved(1, 4)];
    given_events(past.clone())
        .when(C::Release { order_id: order(1) })
        .then([E::ReservationReleased {
            order_id: order(1),
            units: 4,
        }]);
    given_events(past.clone())
        .when(C::Commit { order_id: order(1) })
        .then([E::ReservationCommitted {
            order_id: order(1),
            units: 4,
        }]);

    let released = past
        .iter()
        .chain([&E::ReservationReleased {
            order_id: order(1),
            units: 4,
        }])
        .fold(None, evolve)
        .expect("stock");
    assert_eq!(
        (released.available, released.reserved(), released.shipped),
        (30, 0, 0)
    );
    let committed = past
        .iter()
        .chain([&E::ReservationCommitted {
            order_id: order(1),
            units: 4,
        }])
        .fold(None, evolve)
        .expect("stock");
    assert_eq!(
        (committed.available, committed.reserved(), committed.shipped),
        (26, 0, 4)
    );
}

#[test]
fn releasing_or_committing_without_a_reservation_is_refused() {
    for command in [
        C::Release { order_id: order(9) },
        C::Commit { order_id: order(9) },
    ] {
        given_events([created(), received(3)])
            .when(command)
            .then_error(InventoryError::NoReservation(order(9)));
    }
}

#[test]
fn refusals_are_classed_for_callers() {
    assert_eq!(InventoryError::NotFound.kind(), ErrorKind::NotFound);
    assert_eq!(
        InventoryError::Insufficient {
            available: 0,
            requested: 1
        }
        .kind(),
        ErrorKind::Conflict
    );
    assert_eq!(InventoryError::AlreadyExists.kind(), ErrorKind::Conflict);
    assert_eq!(InventoryError::TooMuchStock.kind(), ErrorKind::Invalid);
}

#[test]
fn a_skus_stock_id_is_stable_and_its_own() {
    assert_eq!(stock_id(&sku()), stock_id(&sku()));
    let other = domain::inventory::Sku::parse("BOOK-2").expect("valid");
    assert_ne!(stock_id(&sku()), stock_id(&other));
}
