//! `decide`: every rule of the order lifecycle.

use std::collections::HashSet;

use super::command::OrderCommand;
use super::error::OrderError;
use super::event::OrderEvent;
use super::state::{Order, Status};
use super::values::{LineItem, MAX_LINES, Sku};

/// The events `command` produces in `state`, or the rule it breaks.
pub fn decide(
    command: &OrderCommand,
    state: &Option<Order>,
) -> Result<Vec<OrderEvent>, OrderError> {
    let event = match (command, state) {
        (
            OrderCommand::Place {
                order_id,
                customer_id,
                email,
                items,
            },
            None,
        ) => {
            check_new_lines(items)?;
            OrderEvent::OrderPlaced {
                order_id: *order_id,
                customer_id: customer_id.clone(),
                email: email.clone(),
                items: items.clone(),
            }
        }
        (OrderCommand::Place { .. }, Some(_)) => return Err(OrderError::AlreadyExists),
        // Recorded already: a repeat changes nothing.
        (OrderCommand::RecordStockReserved, Some(order))
            if order.stock_reserved && order.status == Status::Confirmed =>
        {
            return Ok(Vec::new());
        }
        (_, None) => return Err(OrderError::NotFound),
        (command, Some(order)) => change(command, order)?,
    };
    Ok(vec![event])
}

/// A command on an existing order.
fn change(command: &OrderCommand, order: &Order) -> Result<OrderEvent, OrderError> {
    require_status(command, order.status)?;
    Ok(match command {
        OrderCommand::Place { .. } => return Err(OrderError::AlreadyExists),
        OrderCommand::AddItem { item } => add_item(order, item)?,
        OrderCommand::RemoveItem { sku } => remove_item(order, sku)?,
        OrderCommand::Confirm => OrderEvent::OrderConfirmed {},
        OrderCommand::RecordStockReserved => OrderEvent::OrderStockReserved {},
        OrderCommand::Ship { .. } if !order.stock_reserved => {
            return Err(OrderError::StockNotReserved);
        }
        OrderCommand::Ship {
            carrier,
            tracking_number,
        } => OrderEvent::OrderShipped {
            carrier: carrier.clone(),
            tracking_number: tracking_number.clone(),
        },
        OrderCommand::Deliver => OrderEvent::OrderDelivered {},
        OrderCommand::Cancel { reason } => OrderEvent::OrderCancelled {
            reason: reason.clone(),
        },
    })
}

/// The lifecycle: which statuses each command applies in.
fn require_status(command: &OrderCommand, status: Status) -> Result<(), OrderError> {
    use Status::*;
    let allowed: &[Status] = match command {
        OrderCommand::Place { .. } => &[],
        OrderCommand::AddItem { .. } | OrderCommand::RemoveItem { .. } | OrderCommand::Confirm => {
            &[Placed]
        }
        OrderCommand::Ship { .. } | OrderCommand::RecordStockReserved => &[Confirmed],
        OrderCommand::Deliver => &[Shipped],
        OrderCommand::Cancel { .. } => &[Placed, Confirmed],
    };
    if allowed.contains(&status) {
        return Ok(());
    }
    let hint = match (command, status) {
        (OrderCommand::Ship { .. } | OrderCommand::RecordStockReserved, Placed) => {
            "; confirm it first"
        }
        (OrderCommand::Deliver, Placed | Confirmed) => "; ship it first",
        (OrderCommand::Place { .. }, _) => "",
        (_, Delivered | Cancelled) => ": it is final",
        _ => "",
    };
    Err(OrderError::IllegalTransition {
        verb: command.verb(),
        status,
        hint,
    })
}

fn check_new_lines(items: &[LineItem]) -> Result<(), OrderError> {
    if items.is_empty() {
        return Err(OrderError::NoItems);
    }
    if items.len() > MAX_LINES {
        return Err(OrderError::TooManyLines);
    }
    let mut seen = HashSet::new();
    if let Some(twice) = items.iter().find(|item| !seen.insert(&item.sku)) {
        return Err(OrderError::DuplicateSku(twice.sku.clone()));
    }
    total(items.iter()).map(|_| ())
}

fn add_item(order: &Order, item: &LineItem) -> Result<OrderEvent, OrderError> {
    match order.line(&item.sku) {
        Some(line) if line.unit_price != item.unit_price => {
            return Err(OrderError::PriceMismatch {
                sku: item.sku.clone(),
                existing_cents: line.unit_price.cents(),
            });
        }
        Some(line) if line.quantity.checked_add(item.quantity).is_none() => {
            return Err(OrderError::QuantityLimit {
                sku: item.sku.clone(),
                total: u64::from(line.quantity.get()) + u64::from(item.quantity.get()),
            });
        }
        Some(_) => {}
        None if order.lines.len() >= MAX_LINES => return Err(OrderError::TooManyLines),
        None => {}
    }
    total(order.lines.iter().chain([item]))?;
    Ok(OrderEvent::ItemAdded { item: item.clone() })
}

fn remove_item(order: &Order, sku: &Sku) -> Result<OrderEvent, OrderError> {
    if order.line(sku).is_none() {
        return Err(OrderError::SkuNotInOrder(sku.clone()));
    }
    if order.lines.len() == 1 {
        return Err(OrderError::LastLine);
    }
    Ok(OrderEvent::ItemRemoved { sku: sku.clone() })
}

/// The sum of the lines' amounts, refusing anything that would overflow.
fn total<'a>(mut lines: impl Iterator<Item = &'a LineItem>) -> Result<u64, OrderError> {
    lines.try_fold(0u64, |sum, line| {
        line.amount_cents()
            .and_then(|amount| sum.checked_add(amount))
            .ok_or(OrderError::TotalTooLarge)
    })
}
