//! Order request bodies (parsed into domain values) and the order view.

use chrono::{DateTime, Utc};
use domain::aggregate::Snapshot;
use domain::order::{
    CancelReason, Carrier, CustomerId, Email, LineItem, Order, Quantity, Sku, Status,
    TrackingNumber, UnitPrice,
};
use serde::{Deserialize, Serialize};
use service_kit::Problem;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{integral, invalid};

/// An order's snapshot as the projector stores it.
pub type OrderSnapshot = Snapshot<Option<Order>>;

// The patterns below say in JSON Schema what the domain's values accept:
// printable text (no control characters, not only blanks) and e-mail
// addresses (`local@domain.tld`, the domain neither starting nor ending
// with a dot). Attributes take only literals, hence the repetition.

/// `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderBody {
    /// Who places it: 1 to 64 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub customer_id: String,
    /// Where its e-mails go: `local@domain.tld`, no blanks or control characters.
    #[schema(
        max_length = 254,
        pattern = r"^[^@\s\u0000-\u001F\u007F-\u009F]+@[^@.\s\u0000-\u001F\u007F-\u009F][^@\s\u0000-\u001F\u007F-\u009F]*\.[^@\s\u0000-\u001F\u007F-\u009F]*[^@.\s\u0000-\u001F\u007F-\u009F]$"
    )]
    pub email: String,
    /// 1 to 100 lines, each SKU once.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemBody>,
}

/// A line, in `POST /orders` and `POST /orders/{id}/items`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// `[A-Za-z0-9._-]{1,64}`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(deserialize_with = "integral")]
    pub quantity: u64,
    /// 0 to 100000000.
    #[schema(minimum = 0, maximum = 100000000)]
    #[serde(deserialize_with = "integral")]
    pub unit_price_cents: u64,
}

/// `POST /orders/{id}/ship`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    /// 1 to 64 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub carrier: String,
    /// 1 to 128 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub tracking_number: String,
}

/// `POST /orders/{id}/cancel`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// 1 to 500 characters, not all blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

impl ItemBody {
    /// The line, or the first field that breaks its rule.
    pub fn parse(self) -> Result<LineItem, Problem> {
        Ok(LineItem {
            sku: Sku::parse(self.sku).map_err(invalid)?,
            quantity: Quantity::parse(self.quantity).map_err(invalid)?,
            unit_price: UnitPrice::parse(self.unit_price_cents).map_err(invalid)?,
        })
    }
}

impl PlaceOrderBody {
    /// The parsed fields.
    pub fn parse(self) -> Result<(CustomerId, Email, Vec<LineItem>), Problem> {
        Ok((
            CustomerId::parse(self.customer_id).map_err(invalid)?,
            Email::parse(self.email).map_err(invalid)?,
            self.items
                .into_iter()
                .map(ItemBody::parse)
                .collect::<Result<_, _>>()?,
        ))
    }
}

impl ShipBody {
    /// The parsed fields.
    pub fn parse(self) -> Result<(Carrier, TrackingNumber), Problem> {
        Ok((
            Carrier::parse(self.carrier).map_err(invalid)?,
            TrackingNumber::parse(self.tracking_number).map_err(invalid)?,
        ))
    }
}

impl CancelBody {
    /// The parsed reason.
    pub fn parse(self) -> Result<CancelReason, Problem> {
        CancelReason::parse(self.reason).map_err(invalid)
    }
}

/// A line in the view.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    sku: String,
    quantity: u32,
    unit_price_cents: u64,
}

/// The order as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    id: Uuid,
    customer_id: String,
    email: String,
    #[schema(schema_with = status_schema)]
    status: Status,
    items: Vec<ItemView>,
    total_cents: u64,
    /// Every line's units are reserved in the inventory (once confirmed).
    stock_reserved: bool,
    /// Also the `ETag`; send it back in `If-Match`.
    version: u64,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    /// Once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    carrier: Option<String>,
    /// Once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    /// Once cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<String>,
}

/// The status names, taken from the domain so the document cannot drift.
pub fn status_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Status::ALL.map(Status::as_str)))
        .build()
}

impl OrderView {
    /// The view of a snapshot, if the order exists.
    pub fn of(snapshot: &OrderSnapshot) -> Option<Self> {
        let order: &Order = snapshot.state.as_ref()?;
        Some(Self {
            id: order.id,
            customer_id: order.customer_id.to_string(),
            email: order.email.to_string(),
            status: order.status,
            items: order
                .lines
                .iter()
                .map(|line| ItemView {
                    sku: line.sku.to_string(),
                    quantity: line.quantity.get(),
                    unit_price_cents: line.unit_price.cents(),
                })
                .collect(),
            total_cents: order.total_cents,
            stock_reserved: order.stock_reserved,
            version: snapshot.version,
            created_at: snapshot.created_at,
            updated_at: snapshot.updated_at,
            carrier: order.shipment.as_ref().map(|s| s.carrier.to_string()),
            tracking_number: order
                .shipment
                .as_ref()
                .map(|s| s.tracking_number.to_string()),
            cancel_reason: order.cancel_reason.as_ref().map(ToString::to_string),
        })
    }
}
