//! The inventory domain: rules, wire format, and the laws of the stock.

mod decide;
#[path = "../common/golden.rs"]
mod golden;
mod properties;
mod wire;

use domain::inventory::{InventoryCommand, InventoryEvent, Quantity, Sku};
use uuid::Uuid;

pub fn sku() -> Sku {
    Sku::parse("BOOK-1").expect("valid")
}

pub fn units(n: u64) -> Quantity {
    Quantity::parse(n).expect("valid")
}

pub fn order(n: u128) -> Uuid {
    Uuid::from_u128(0x0193_6f1e_8f00_7000_8000_0000_0000_1000 + n)
}

pub fn created() -> InventoryEvent {
    InventoryEvent::StockCreated {
        sku: sku(),
        low_stock_threshold: 5,
    }
}

pub fn create() -> InventoryCommand {
    InventoryCommand::Create {
        sku: sku(),
        low_stock_threshold: 5,
    }
}
