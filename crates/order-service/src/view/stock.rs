//! Inventory request bodies and the stock view.

use chrono::{DateTime, Utc};
use domain::aggregate::Snapshot;
use domain::inventory::{MAX_UNITS, Quantity, Stock};
use domain::order::ValueError;
use serde::{Deserialize, Serialize};
use service_kit::Problem;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{integral, invalid};

/// A SKU's snapshot as the projector stores it.
pub type StockSnapshot = Snapshot<Option<Stock>>;

/// `PUT /inventory/{sku}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStockBody {
    /// A webhook tells when available units fall below this; 0 (the
    /// default) never.
    #[serde(default, deserialize_with = "integral")]
    #[schema(minimum = 0, maximum = 1000000000)]
    pub low_stock_threshold: u64,
}

/// `POST /inventory/{sku}/restock`: units that arrived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitsBody {
    /// 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(deserialize_with = "integral")]
    pub units: u64,
}

/// `POST /inventory/{sku}/reservations`: units held for an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    /// The order they are for (one reservation per order and SKU).
    pub order_id: Uuid,
    /// 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(deserialize_with = "integral")]
    pub units: u64,
}

impl CreateStockBody {
    /// The parsed threshold.
    pub fn parse(self) -> Result<u64, Problem> {
        if self.low_stock_threshold > MAX_UNITS {
            return Err(invalid(ValueError {
                field: "low_stock_threshold",
                rule: "must be 0 to 1000000000 units",
            }));
        }
        Ok(self.low_stock_threshold)
    }
}

impl UnitsBody {
    /// The parsed count.
    pub fn parse(self) -> Result<Quantity, Problem> {
        Quantity::parse(self.units).map_err(|e| {
            invalid(ValueError {
                field: "units",
                ..e
            })
        })
    }
}

impl ReserveBody {
    /// The parsed fields.
    pub fn parse(self) -> Result<(Uuid, Quantity), Problem> {
        let units = Quantity::parse(self.units).map_err(|e| {
            invalid(ValueError {
                field: "units",
                ..e
            })
        })?;
        Ok((self.order_id, units))
    }
}

/// An order's reservation in the view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationView {
    order_id: Uuid,
    units: u64,
}

/// A SKU's stock as the API shows it: `received = available + reserved + shipped`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockView {
    sku: String,
    /// Every unit that ever arrived.
    received: u64,
    /// On hand and free to reserve.
    available: u64,
    /// Held for orders.
    reserved: u64,
    /// Left with their orders.
    shipped: u64,
    low_stock_threshold: u64,
    /// The orders holding units, oldest order id first.
    reservations: Vec<ReservationView>,
    /// Also the `ETag`; send it back in `If-Match`.
    version: u64,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl StockView {
    /// The view of a snapshot, if the stock exists.
    pub fn of(snapshot: &StockSnapshot) -> Option<Self> {
        let stock = snapshot.state.as_ref()?;
        Some(Self {
            sku: stock.sku.to_string(),
            received: stock.received,
            available: stock.available,
            reserved: stock.reserved(),
            shipped: stock.shipped,
            low_stock_threshold: stock.low_stock_threshold,
            reservations: stock
                .reservations
                .iter()
                .map(|(order_id, units)| ReservationView {
                    order_id: *order_id,
                    units: *units,
                })
                .collect(),
            version: snapshot.version,
            created_at: snapshot.created_at,
            updated_at: snapshot.updated_at,
        })
    }
}
