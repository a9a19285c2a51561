//! What a fact of an order calls for. Pure.
//!
//! - Confirmed: reserve each line's units on its SKU; once all are held,
//!   record `OrderStockReserved` on the order. A line that cannot be held
//!   (too few units, or no such SKU): release what was reserved and cancel
//!   the order, `out of stock: <sku>`.
//! - Cancelled: release every line's reservation (one not held is nothing
//!   to release).
//! - Shipped: commit every line's reservation (the units leave).
//!
//! The workflow keeps no state of its own: the order's state in each
//! change record says which lines there are, and the inventory says what is
//! held. Every command's `Idempotency-Key` is derived from the fact that
//! caused it, so a replay after a crash issues the same commands, and
//! order-service recognises them as done.

use domain::order::{Order, OrderEvent, Sku};
use uuid::Uuid;

/// What a fact calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Reserve every line, then record it on the order (or undo and cancel).
    Reserve(Vec<Line>),
    /// Release every line's reservation.
    Release(Vec<Line>),
    /// Commit every line's reservation.
    Commit(Vec<Line>),
    /// Nothing.
    Nothing,
}

impl Plan {
    /// The plan's name, as metrics label it.
    pub fn name(&self) -> &'static str {
        match self {
            Plan::Reserve(_) => "reserve",
            Plan::Release(_) => "release",
            Plan::Commit(_) => "commit",
            Plan::Nothing => "nothing",
        }
    }
}

/// One line of an order, as the inventory sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The SKU.
    pub sku: Sku,
    /// Its units.
    pub units: u32,
}

/// The plan for `event`, which left the order in `order`.
pub fn plan(event: &OrderEvent, order: &Order) -> Plan {
    let lines = || {
        order
            .lines
            .iter()
            .map(|line| Line {
                sku: line.sku.clone(),
                units: line.quantity.get(),
            })
            .collect()
    };
    match event {
        OrderEvent::OrderConfirmed {} => Plan::Reserve(lines()),
        OrderEvent::OrderCancelled { .. } => Plan::Release(lines()),
        OrderEvent::OrderShipped { .. } => Plan::Commit(lines()),
        _ => Plan::Nothing,
    }
}

/// The `Idempotency-Key` of one step caused by event `cause`: the same on
/// every replay of that event.
pub fn key(cause: Uuid, step: &str, sku: Option<&Sku>) -> String {
    match sku {
        Some(sku) => format!("fulfilment-{cause}-{step}-{sku}"),
        None => format!("fulfilment-{cause}-{step}"),
    }
}

/// The reason an order is cancelled for when `sku` cannot be reserved.
pub fn out_of_stock(sku: &Sku) -> String {
    format!("out of stock: {sku}")
}

#[cfg(test)]
mod tests {
    use domain::order::{
        CancelReason, CustomerId, Email, LineItem, Order, OrderEvent, Quantity, Sku, Status,
        UnitPrice,
    };
    use uuid::Uuid;

    use super::{Line, Plan, key, plan};

    fn order() -> Order {
        let line = |sku: &str, units| LineItem {
            sku: Sku::parse(sku).expect("valid"),
            quantity: Quantity::parse(units).expect("valid"),
            unit_price: UnitPrice::parse(100).expect("valid"),
        };
        Order {
            id: Uuid::nil(),
            customer_id: CustomerId::parse("c").expect("valid"),
            email: Email::parse("a@b.co").expect("valid"),
            status: Status::Confirmed,
            lines: vec![line("A", 2), line("B", 1)],
            total_cents: 300,
            stock_reserved: false,
            shipment: None,
            cancel_reason: None,
        }
    }

    #[test]
    fn each_fact_calls_for_its_steps_on_every_line() {
        let lines = vec![
            Line {
                sku: Sku::parse("A").expect("valid"),
                units: 2,
            },
            Line {
                sku: Sku::parse("B").expect("valid"),
                units: 1,
            },
        ];
        assert_eq!(
            plan(&OrderEvent::OrderConfirmed {}, &order()),
            Plan::Reserve(lines.clone())
        );
        let cancelled = OrderEvent::OrderCancelled {
            reason: CancelReason::parse("no").expect("valid"),
        };
        assert_eq!(plan(&cancelled, &order()), Plan::Release(lines));
        assert_eq!(
            plan(&OrderEvent::OrderDelivered {}, &order()),
            Plan::Nothing
        );
    }

    #[test]
    fn a_steps_key_is_the_same_on_every_replay_and_differs_per_step() {
        let cause = Uuid::now_v7();
        let a = Sku::parse("A").expect("valid");
        assert_eq!(
            key(cause, "reserve", Some(&a)),
            key(cause, "reserve", Some(&a))
        );
        assert_ne!(
            key(cause, "reserve", Some(&a)),
            key(cause, "undo", Some(&a))
        );
        assert_ne!(
            key(cause, "reserve", Some(&a)),
            key(Uuid::now_v7(), "reserve", Some(&a))
        );
    }
}
