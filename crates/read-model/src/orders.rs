//! The order tables: what the pipeline reads back to continue the fold, and
//! how a folded batch is written (a few set-based statements and binary
//! `COPY`s per batch, not a round trip per event).

use std::collections::HashMap;

use domain::aggregate::Snapshot;
use domain::order::{Order, OrderAggregate};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::copy::CopyRows;
use crate::fold::Folded;
use crate::pipeline::Projection;
use crate::schema::{Model, ORDERS};
use crate::tables::{encode_snapshot, load_snapshots, to_i64, write_history};

/// An order's snapshot as the fold keeps it.
pub type OrderSnapshot = Snapshot<Option<Order>>;

/// Orders, their lines and their history.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrdersProjection;

impl Projection for OrdersProjection {
    type Aggregate = OrderAggregate;
    const MODEL: Model = ORDERS;

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, OrderSnapshot>, sqlx::Error> {
        load_snapshots::<OrderAggregate>(
            conn,
            "SELECT id, snapshot FROM orders WHERE id = ANY($1)",
            ids,
        )
        .await
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        folded: &Folded<OrderAggregate>,
    ) -> Result<(), sqlx::Error> {
        write_orders(conn, folded).await?;
        write_lines(conn, folded).await?;
        write_history(
            conn,
            folded,
            "COPY order_events (order_id, version, event_id, command_id, event_type, occurred_at, event)
             FROM STDIN (FORMAT binary)",
        )
        .await
    }
}

/// New orders are copied in; the others are updated in one statement.
async fn write_orders(
    conn: &mut PgConnection,
    folded: &Folded<OrderAggregate>,
) -> Result<(), sqlx::Error> {
    let mut created = CopyRows::new(9);
    let mut updated = OrderRows::default();
    for (id, snapshot) in &folded.changed {
        let Some(order) = &snapshot.state else {
            continue;
        };
        let encoded = encode_snapshot(snapshot)?;
        // Nothing of a created order is stored yet (the batch loaded its
        // snapshots under the lane's lock): a plain insert cannot conflict.
        if folded.created.contains(id) {
            created
                .row()
                .uuid(id)
                .text(order.customer_id.as_str())
                .text(order.email.as_str())
                .text(order.status.as_str())
                .int8(to_i64(order.total_cents))
                .int8(to_i64(snapshot.version))
                .timestamptz(snapshot.created_at)
                .timestamptz(snapshot.updated_at)
                .bytes(&encoded);
            continue;
        }
        updated.id.push(*id);
        updated.status.push(order.status.as_str());
        updated.total_cents.push(to_i64(order.total_cents));
        updated.version.push(to_i64(snapshot.version));
        updated.updated_at.push(snapshot.updated_at);
        updated.snapshot.push(encoded);
    }
    created
        .send(
            conn,
            "COPY orders (id, customer_id, email, status, total_cents, version, created_at, updated_at, snapshot)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    if updated.id.is_empty() {
        return Ok(());
    }
    // An order's customer, e-mail and creation time never change.
    sqlx::query(
        "UPDATE orders SET status = t.status, total_cents = t.total_cents, version = t.version,
                           updated_at = t.updated_at, snapshot = t.snapshot
         FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::timestamptz[], $6::bytea[])
              AS t(id, status, total_cents, version, updated_at, snapshot)
         WHERE orders.id = t.id",
    )
    .bind(&updated.id)
    .bind(&updated.status)
    .bind(&updated.total_cents)
    .bind(&updated.version)
    .bind(&updated.updated_at)
    .bind(&updated.snapshot)
    .execute(conn)
    .await?;
    Ok(())
}

/// Column arrays for one multi-row update.
#[derive(Default)]
struct OrderRows {
    id: Vec<Uuid>,
    status: Vec<&'static str>,
    total_cents: Vec<i64>,
    version: Vec<i64>,
    updated_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    snapshot: Vec<Vec<u8>>,
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
    if !existing.is_empty() {
        sqlx::query("DELETE FROM order_lines WHERE order_id = ANY($1)")
            .bind(&existing)
            .execute(&mut *conn)
            .await?;
    }
    let mut lines = CopyRows::new(5);
    for (id, snapshot) in &folded.changed {
        let Some(order) = &snapshot.state else {
            continue;
        };
        for (index, line) in order.lines.iter().enumerate() {
            lines
                .row()
                .uuid(id)
                .int4(i32::try_from(index).unwrap_or(i32::MAX))
                .text(line.sku.as_str())
                .int4(i32::try_from(line.quantity.get()).unwrap_or(i32::MAX))
                .int8(to_i64(line.unit_price.cents()));
        }
    }
    lines
        .send(
            conn,
            "COPY order_lines (order_id, position, sku, quantity, unit_price_cents)
             FROM STDIN (FORMAT binary)",
        )
        .await?;
    Ok(())
}
