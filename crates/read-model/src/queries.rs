//! What the API reads from the model.

use domain::order::Status;
use sqlx::PgPool;
use uuid::Uuid;

use crate::orders::OrderSnapshot;
use crate::tables::{decode_snapshot, history};

/// The most orders one page may hold.
pub const MAX_PAGE: u32 = 100;

/// A page request of `GET /orders`.
#[derive(Clone, Debug, Default)]
pub struct ListOrders {
    /// Only this customer's orders.
    pub customer_id: Option<String>,
    /// Only orders in this status.
    pub status: Option<Status>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: u32,
    /// Continue after this page's end.
    pub cursor: Option<Cursor>,
}

/// Where a page ended: opaque to clients (`c` and the last id in hex).
/// Orders are paged by id, which never changes, so under concurrent writes
/// every order that existed when paging began appears exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor(Uuid);

impl Cursor {
    /// The text form given to clients.
    pub fn encode(self) -> String {
        format!("c{}", self.0.simple())
    }

    /// Parses a cursor this API handed out.
    pub fn decode(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('c')?;
        (hex.len() == 32)
            .then(|| Uuid::try_parse(hex).ok())
            .flatten()
            .map(Self)
    }
}

/// One page of orders, oldest id first.
#[derive(Debug)]
pub struct Page {
    /// The orders' snapshots.
    pub orders: Vec<OrderSnapshot>,
    /// Present when more orders may follow.
    pub next: Option<Cursor>,
}

/// A page of orders matching the filters.
pub async fn list_orders(pool: &PgPool, request: &ListOrders) -> Result<Page, sqlx::Error> {
    let limit = request.limit.clamp(1, MAX_PAGE);
    let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT id, snapshot FROM orders
         WHERE ($1::text IS NULL OR customer_id = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id
         LIMIT $4",
    )
    .bind(&request.customer_id)
    .bind(request.status.map(Status::as_str))
    .bind(request.cursor.map(|c| c.0))
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let orders = rows
        .into_iter()
        .take(limit as usize)
        .map(|(id, bytes)| Ok((id, decode_snapshot(&bytes)?)))
        .collect::<Result<Vec<(Uuid, OrderSnapshot)>, sqlx::Error>>()?;
    let next = more
        .then(|| orders.last().map(|(id, _)| Cursor(*id)))
        .flatten();
    Ok(Page {
        orders: orders.into_iter().map(|(_, snapshot)| snapshot).collect(),
        next,
    })
}

/// An order's accepted events (the wire envelopes), oldest first; `None` for
/// an order the model does not know.
pub async fn order_events(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<Vec<serde_json::Value>>, sqlx::Error> {
    history(
        pool,
        "SELECT event FROM order_events WHERE order_id = $1 ORDER BY version",
        order_id,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::Cursor;
    use uuid::Uuid;

    #[test]
    fn a_cursor_survives_its_text_form_and_garbage_is_refused() {
        let cursor = Cursor(Uuid::now_v7());
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "c",
            "x0123",
            "c12",
            &format!("d{}", Uuid::nil().simple()),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }
}
