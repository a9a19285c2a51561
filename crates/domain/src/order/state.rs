//! The order's state and `evolve`, which records facts and decides nothing.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::OrderEvent;
use super::values::{CancelReason, Carrier, CustomerId, Email, LineItem, Sku, TrackingNumber};

/// Where an order is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Lines may still change.
    Placed,
    /// Lines are final; waiting to ship.
    Confirmed,
    /// On its way.
    Shipped,
    /// Arrived: final.
    Delivered,
    /// Called off: final.
    Cancelled,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Placed,
        Status::Confirmed,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
    ];

    /// The name the API and messages use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Placed => "placed",
            Status::Confirmed => "confirmed",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a shipped order travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// Who carries it.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: TrackingNumber,
}

/// An order that exists. The aggregate's state is `Option<Order>`: `None`
/// until it is placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its id.
    pub id: Uuid,
    /// Who placed it.
    pub customer_id: CustomerId,
    /// Where its e-mails go.
    pub email: Email,
    /// Where it is in its lifecycle.
    pub status: Status,
    /// Its lines, one per SKU, in the order they were added.
    pub lines: Vec<LineItem>,
    /// The sum of the lines' amounts, in cents.
    pub total_cents: u64,
    /// Set once every line's units are reserved in the inventory.
    #[serde(default)]
    pub stock_reserved: bool,
    /// Set once shipped.
    pub shipment: Option<Shipment>,
    /// Set once cancelled.
    pub cancel_reason: Option<CancelReason>,
}

impl Order {
    /// The line of a SKU, if the order has one.
    pub fn line(&self, sku: &Sku) -> Option<&LineItem> {
        self.lines.iter().find(|line| &line.sku == sku)
    }

    /// True once no command can change it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status, Status::Delivered | Status::Cancelled)
    }

    fn with_lines(mut self, lines: Vec<LineItem>) -> Self {
        // `decide` keeps totals in range with checked arithmetic; saturating
        // here only keeps `evolve` total for any input.
        self.total_cents = lines.iter().fold(0u64, |sum, line| {
            sum.saturating_add(line.amount_cents().unwrap_or(u64::MAX))
        });
        self.lines = lines;
        self
    }
}

/// The state after `event`. An event that does not fit the state (which the
/// validation rule never lets through) leaves it unchanged.
pub fn evolve(state: Option<Order>, event: &OrderEvent) -> Option<Order> {
    if let OrderEvent::OrderPlaced {
        order_id,
        customer_id,
        email,
        items,
    } = event
    {
        let order = Order {
            id: *order_id,
            customer_id: customer_id.clone(),
            email: email.clone(),
            status: Status::Placed,
            lines: Vec::new(),
            total_cents: 0,
            stock_reserved: false,
            shipment: None,
            cancel_reason: None,
        };
        return Some(order.with_lines(items.clone()));
    }
    let mut order = state?;
    match event {
        OrderEvent::OrderPlaced { .. } => {}
        OrderEvent::ItemAdded { item } => {
            let mut lines = std::mem::take(&mut order.lines);
            match lines.iter_mut().find(|line| line.sku == item.sku) {
                Some(line) => line.quantity = line.quantity.saturating_add(item.quantity),
                None => lines.push(item.clone()),
            }
            order = order.with_lines(lines);
        }
        OrderEvent::ItemRemoved { sku } => {
            let mut lines = std::mem::take(&mut order.lines);
            lines.retain(|line| &line.sku != sku);
            order = order.with_lines(lines);
        }
        OrderEvent::OrderConfirmed {} => order.status = Status::Confirmed,
        OrderEvent::OrderStockReserved {} => order.stock_reserved = true,
        OrderEvent::OrderShipped {
            carrier,
            tracking_number,
        } => {
            order.status = Status::Shipped;
            order.shipment = Some(Shipment {
                carrier: carrier.clone(),
                tracking_number: tracking_number.clone(),
            });
        }
        OrderEvent::OrderDelivered {} => order.status = Status::Delivered,
        OrderEvent::OrderCancelled { reason } => {
            order.status = Status::Cancelled;
            order.cancel_reason = Some(reason.clone());
        }
    }
    Some(order)
}
