//! The order tables: what the pipeline reads back to continue the fold, and
//! how a folded batch is written (a few set-based statements per batch, not
//! a round trip per event).

use std::collections::HashMap;

use domain::aggregate::{EventPayload, Snapshot};
use domain::order::{Order, OrderAggregate};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::fold::Folded;
use crate::pipeline::Projection;

/// An order's snapshot as the fold keeps it.
pub type OrderSnapshot = Snapshot<Option<Order>>;

/// Orders, their lines and their history.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrdersProjection;

impl Projection for OrdersProjection {
    type Aggregate = OrderAggregate;

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, OrderSnapshot>, sqlx::Error> {
        let rows: Vec<(Uuid, Json<OrderSnapshot>)> =
            sqlx::query_as("SELECT id, snapshot FROM orders WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(conn)
                .await?;
        Ok(rows.into_iter().map(|(id, Json(s))| (id, s)).collect())
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        folded: &Folded<OrderAggregate>,
    ) -> Result<(), sqlx::Error> {
        write_orders(conn, folded).await?;
        write_lines(conn, folded).await?;
        write_events(conn, folded).await
    }
}

async fn write_orders(
    conn: &mut PgConnection,
    folded: &Folded<OrderAggregate>,
) -> Result<(), sqlx::Error> {
    let mut rows = OrderRows::default();
    for (id, snapshot) in &folded.changed {
        let Some(order) = &snapshot.state else {
            continue;
        };
        rows.id.push(*id);
        rows.customer_id.push(order.customer_id.to_string());
        rows.email.push(order.email.to_string());
        rows.status.push(order.status.as_str());
        rows.total_cents.push(to_i64(order.total_cents));
        rows.version.push(to_i64(snapshot.version));
        rows.created_at.push(snapshot.created_at);
        rows.updated_at.push(snapshot.updated_at);
        rows.snapshot
            .push(serde_json::to_string(snapshot).map_err(|e| sqlx::Error::Encode(e.into()))?);
    }
    sqlx::query(
        "INSERT INTO orders (id, customer_id, email, status, total_cents, version, created_at, updated_at, snapshot)
         SELECT id, customer_id, email, status, total_cents, version, created_at, updated_at, snapshot::jsonb
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                     $7::timestamptz[], $8::timestamptz[], $9::text[])
              AS t(id, customer_id, email, status, total_cents, version, created_at, updated_at, snapshot)
         ON CONFLICT (id) DO UPDATE SET
             customer_id = EXCLUDED.customer_id, email = EXCLUDED.email, status = EXCLUDED.status,
             total_cents = EXCLUDED.total_cents, version = EXCLUDED.version,
             created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
             snapshot = EXCLUDED.snapshot",
    )
    .bind(&rows.id)
    .bind(&rows.customer_id)
    .bind(&rows.email)
    .bind(&rows.status)
    .bind(&rows.total_cents)
    .bind(&rows.version)
    .bind(&rows.created_at)
    .bind(&rows.updated_at)
    .bind(&rows.snapshot)
    .execute(conn)
    .await?;
    Ok(())
}

/// Column arrays for one multi-row upsert.
#[derive(Default)]
struct OrderRows {
    id: Vec<Uuid>,
    customer_id: Vec<String>,
    email: Vec<String>,
    status: Vec<&'static str>,
    total_cents: Vec<i64>,
    version: Vec<i64>,
    created_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    updated_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    snapshot: Vec<String>,
}

/// Replaces the lines of every changed order.
async fn write_lines(
    conn: &mut PgConnection,
    folded: &Folded<OrderAggregate>,
) -> Result<(), sqlx::Error> {
    let existing: Vec<Uuid> = folded
        .changed
        .keys()
        .filter(|id| !folded.created.contains(id))
        .copied()
        .collect();
    sqlx::query("DELETE FROM order_lines WHERE order_id = ANY($1)")
        .bind(&existing)
        .execute(&mut *conn)
        .await?;
    let (mut order_id, mut position, mut sku, mut quantity, mut price) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, snapshot) in &folded.changed {
        let Some(order) = &snapshot.state else {
            continue;
        };
        for (index, line) in order.lines.iter().enumerate() {
            order_id.push(*id);
            position.push(i32::try_from(index).unwrap_or(i32::MAX));
            sku.push(line.sku.to_string());
            quantity.push(i32::try_from(line.quantity.get()).unwrap_or(i32::MAX));
            price.push(to_i64(line.unit_price.cents()));
        }
    }
    sqlx::query(
        "INSERT INTO order_lines (order_id, position, sku, quantity, unit_price_cents)
         SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::int4[], $5::int8[])",
    )
    .bind(&order_id)
    .bind(&position)
    .bind(&sku)
    .bind(&quantity)
    .bind(&price)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends the accepted events to the history.
async fn write_events(
    conn: &mut PgConnection,
    folded: &Folded<OrderAggregate>,
) -> Result<(), sqlx::Error> {
    let events = &folded.accepted;
    let order_id: Vec<Uuid> = events.iter().map(|e| e.aggregate_id).collect();
    let version: Vec<i64> = events.iter().map(|e| to_i64(e.version)).collect();
    let event_id: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let command_id: Vec<Uuid> = events.iter().map(|e| e.command_id).collect();
    let event_type: Vec<&str> = events.iter().map(|e| e.event.event_type()).collect();
    let occurred_at: Vec<_> = events.iter().map(|e| e.occurred_at).collect();
    let body: Vec<String> = events
        .iter()
        .map(|e| {
            String::from_utf8_lossy(
                &e.encode(<OrderAggregate as domain::aggregate::Aggregate>::TYPE),
            )
            .into_owned()
        })
        .collect();
    sqlx::query(
        "INSERT INTO order_events (order_id, version, event_id, command_id, event_type, occurred_at, event)
         SELECT order_id, version, event_id, command_id, event_type, occurred_at, event::jsonb
         FROM UNNEST($1::uuid[], $2::int8[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[], $7::text[])
              AS t(order_id, version, event_id, command_id, event_type, occurred_at, event)",
    )
    .bind(&order_id)
    .bind(&version)
    .bind(&event_id)
    .bind(&command_id)
    .bind(&event_type)
    .bind(&occurred_at)
    .bind(&body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts and cents fit in `bigint` by the domain's limits.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
