//! Bulk inserts with `COPY ... FROM STDIN (FORMAT binary)`: rows are encoded
//! here in PostgreSQL's binary wire format, so the server neither parses text
//! nor plans a statement per batch. Only the column types the model uses.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// The signature, flags and header extension length of a binary COPY stream.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows of one COPY, encoded as they are added.
pub struct CopyRows {
    buffer: Vec<u8>,
    columns: i16,
    rows: usize,
}

impl CopyRows {
    /// An empty stream of rows with `columns` fields each.
    pub fn new(columns: i16) -> Self {
        Self {
            buffer: HEADER.to_vec(),
            columns,
            rows: 0,
        }
    }

    /// How many rows were added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Starts a row; its fields follow, exactly `columns` of them, in order.
    pub fn row(&mut self) -> &mut Self {
        self.buffer.extend_from_slice(&self.columns.to_be_bytes());
        self.rows += 1;
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // Field lengths are i32 on the wire; the model's values are far smaller.
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buffer.extend_from_slice(&len.to_be_bytes());
        self.buffer.extend_from_slice(bytes);
        self
    }

    /// A `uuid`.
    pub fn uuid(&mut self, value: &Uuid) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// A `text` or `json` value (both are UTF-8 text in binary format).
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// A `bytea`.
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        self.field(value)
    }

    /// An `int4`.
    pub fn int4(&mut self, value: i32) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    /// An `int8`.
    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    /// A `timestamptz`, or NULL.
    pub fn timestamptz(&mut self, value: Option<DateTime<Utc>>) -> &mut Self {
        match value {
            Some(at) => self.field(&(at.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes()),
            None => {
                self.buffer.extend_from_slice(&(-1i32).to_be_bytes());
                self
            }
        }
    }

    /// Sends the rows with `statement` (a `COPY ... FROM STDIN (FORMAT binary)`);
    /// returns how many PostgreSQL stored.
    pub async fn send(
        mut self,
        conn: &mut PgConnection,
        statement: &str,
    ) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        self.buffer.extend_from_slice(&(-1i16).to_be_bytes());
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(self.buffer).await?;
        copy.finish().await
    }
}
