//! The inventory's tables: one row per SKU with its counts, and each SKU's
//! history; what the pipeline reads back and writes, and what the API reads.

use std::collections::HashMap;

use domain::aggregate::Snapshot;
use domain::inventory::{InventoryAggregate, Sku, Stock};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::fold::Folded;
use crate::pipeline::Projection;
use crate::schema::{INVENTORY, Model};
use crate::tables::{
    decode_snapshot, encode_snapshot, history, load_snapshots, to_i64, write_history,
};

/// A SKU's snapshot as the fold keeps it.
pub type StockSnapshot = Snapshot<Option<Stock>>;

/// The stock of every SKU and its history.
#[derive(Clone, Copy, Debug, Default)]
pub struct InventoryProjection;

impl Projection for InventoryProjection {
    type Aggregate = InventoryAggregate;
    const MODEL: Model = INVENTORY;

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, StockSnapshot>, sqlx::Error> {
        load_snapshots::<InventoryAggregate>(
            conn,
            "SELECT id, snapshot FROM stock WHERE id = ANY($1)",
            ids,
        )
        .await
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        folded: &Folded<InventoryAggregate>,
    ) -> Result<(), sqlx::Error> {
        write_stock(conn, folded).await?;
        write_history(
            conn,
            folded,
            "COPY stock_events (stock_id, version, event_id, command_id, event_type, occurred_at, event)
             FROM STDIN (FORMAT binary)",
        )
        .await
    }
}

/// Upserts every changed SKU in one statement (stock changes far less often
/// than orders do, so no `COPY` path for new rows).
async fn write_stock(
    conn: &mut PgConnection,
    folded: &Folded<InventoryAggregate>,
) -> Result<(), sqlx::Error> {
    let mut rows = StockRows::default();
    for (id, snapshot) in &folded.changed {
        let Some(stock) = &snapshot.state else {
            continue;
        };
        rows.id.push(*id);
        rows.sku.push(stock.sku.as_str().to_owned());
        rows.received.push(to_i64(stock.received));
        rows.available.push(to_i64(stock.available));
        rows.reserved.push(to_i64(stock.reserved()));
        rows.shipped.push(to_i64(stock.shipped));
        rows.threshold.push(to_i64(stock.low_stock_threshold));
        rows.version.push(to_i64(snapshot.version));
        rows.created_at.push(snapshot.created_at);
        rows.updated_at.push(snapshot.updated_at);
        rows.snapshot.push(encode_snapshot(snapshot)?);
    }
    if rows.id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO stock (id, sku, received, available, reserved, shipped, low_stock_threshold,
                            version, created_at, updated_at, snapshot)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                              $7::int8[], $8::int8[], $9::timestamptz[], $10::timestamptz[], $11::bytea[])
         ON CONFLICT (id) DO UPDATE SET
             received = EXCLUDED.received, available = EXCLUDED.available,
             reserved = EXCLUDED.reserved, shipped = EXCLUDED.shipped,
             low_stock_threshold = EXCLUDED.low_stock_threshold, version = EXCLUDED.version,
             updated_at = EXCLUDED.updated_at, snapshot = EXCLUDED.snapshot",
    )
    .bind(&rows.id)
    .bind(&rows.sku)
    .bind(&rows.received)
    .bind(&rows.available)
    .bind(&rows.reserved)
    .bind(&rows.shipped)
    .bind(&rows.threshold)
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
struct StockRows {
    id: Vec<Uuid>,
    sku: Vec<String>,
    received: Vec<i64>,
    available: Vec<i64>,
    reserved: Vec<i64>,
    shipped: Vec<i64>,
    threshold: Vec<i64>,
    version: Vec<i64>,
    created_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    updated_at: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    snapshot: Vec<Vec<u8>>,
}

/// The most SKUs one page may hold.
pub const MAX_PAGE: u32 = 100;

/// One page of stock, by SKU.
#[derive(Debug)]
pub struct StockPage {
    /// The SKUs' snapshots.
    pub stock: Vec<StockSnapshot>,
    /// The last SKU of the page, when more may follow: the next page starts
    /// after it.
    pub next_after: Option<Sku>,
}

/// Up to `limit` SKUs after `after`, in SKU order.
pub async fn list_stock(
    pool: &PgPool,
    after: Option<&Sku>,
    limit: u32,
) -> Result<StockPage, sqlx::Error> {
    let limit = limit.clamp(1, MAX_PAGE);
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT snapshot FROM stock WHERE ($1::text IS NULL OR sku > $1) ORDER BY sku LIMIT $2",
    )
    .bind(after.map(Sku::as_str))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let stock = rows
        .iter()
        .take(limit as usize)
        .map(|bytes| decode_snapshot::<Option<Stock>>(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let next_after = more
        .then(|| {
            stock
                .last()
                .and_then(|s| s.state.as_ref())
                .map(|s| s.sku.clone())
        })
        .flatten();
    Ok(StockPage { stock, next_after })
}

/// A SKU's accepted events (the wire envelopes), oldest first; `None` for a
/// SKU the model does not know.
pub async fn stock_events(
    pool: &PgPool,
    stock_id: Uuid,
) -> Result<Option<Vec<serde_json::Value>>, sqlx::Error> {
    history(
        pool,
        "SELECT event FROM stock_events WHERE stock_id = $1 ORDER BY version",
        stock_id,
    )
    .await
}
