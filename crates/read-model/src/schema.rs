//! Where each entity's model lives.
//!
//! A [`Model`] is one entity's tables: the PostgreSQL schema of its live copy
//! and its migrations (with its own offsets table). Every copy of a model is
//! a schema of its own: the live one and, during a rebuild, a shadow. A pool
//! is bound to one schema through its connections' `search_path`, so every
//! query is static SQL with unqualified names, a rebuild swaps copies by
//! renaming schemas, and rebuilding one entity's model never touches
//! another's.

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

/// One entity's read model: where its live copy lives and its migrations
/// (embedded in the binary; each copy keeps its own migration history).
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// The schema the API reads and the pipeline writes.
    pub live: &'static str,
    /// Its tables' migrations.
    pub migrator: &'static Migrator,
}

impl Model {
    /// The schema a rebuild fills before it is swapped in.
    pub fn shadow(&self) -> String {
        format!("{}_next", self.live)
    }
}

static ORDERS_MIGRATOR: Migrator = sqlx::migrate!("./migrations/orders");

/// The orders' model.
pub const ORDERS: Model = Model {
    live: "read_model",
    migrator: &ORDERS_MIGRATOR,
};

static INVENTORY_MIGRATOR: Migrator = sqlx::migrate!("./migrations/inventory");

/// The inventory's model.
pub const INVENTORY: Model = Model {
    live: "inventory_read_model",
    migrator: &INVENTORY_MIGRATOR,
};

/// Why the model could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database URL does not parse.
    #[error("invalid database URL: {0}")]
    Url(#[source] sqlx::Error),
    /// A schema name that is not a plain identifier.
    #[error("invalid schema name `{0}`: use lowercase letters, digits and `_`")]
    Name(String),
    /// The server could not be reached or refused a statement.
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrating the read model: {0}")]
    Migrate(#[from] MigrateError),
}

/// Options for connections that see `schema` (and nothing else but the
/// catalog) under unqualified names.
pub fn options(database_url: &str, schema: &str) -> Result<PgConnectOptions, SchemaError> {
    check_name(schema)?;
    let options: PgConnectOptions = database_url.parse().map_err(SchemaError::Url)?;
    Ok(options.options([("search_path", schema)]))
}

/// A pool bound to `schema`, a copy of `model` created and migrated if needed.
pub async fn connect(
    database_url: &str,
    model: &Model,
    schema: &str,
    max_connections: u32,
) -> Result<PgPool, SchemaError> {
    let options = options(database_url, schema)?;
    let pool = pool_options(&options)
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    prepare(&pool, model, schema).await?;
    Ok(pool)
}

/// A pool bound to `schema` that connects on first use, so a service can
/// start while PostgreSQL is still down.
pub fn connect_lazy(
    database_url: &str,
    schema: &str,
    max_connections: u32,
) -> Result<PgPool, SchemaError> {
    let options = options(database_url, schema)?;
    Ok(pool_options(&options)
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(options))
}

/// What every pool of the model starts from.
fn pool_options(options: &PgConnectOptions) -> PgPoolOptions {
    crate::nodelay::set_on_connect(PgPoolOptions::new(), options.get_port())
}

/// Creates the schema if missing and applies `model`'s migrations (a no-op
/// when current).
pub async fn prepare(pool: &PgPool, model: &Model, schema: &str) -> Result<(), SchemaError> {
    check_name(schema)?;
    let mut conn = pool.acquire().await?;
    let result = migrate(&mut conn, model, schema).await;
    if result.is_err() {
        // The migrator holds a session-level advisory lock while it works; a
        // connection that failed midway may still hold it, and back in the
        // pool it would block every later attempt. Close it instead.
        let _ = conn.detach().close().await;
    }
    result
}

async fn migrate(conn: &mut PgConnection, model: &Model, schema: &str) -> Result<(), SchemaError> {
    // The name was checked to be a plain identifier: safe to splice.
    conn.execute(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .await?;
    // `run` on a borrowed connection trips the compiler's "Acquire is not
    // general enough" inside spawned tasks; `run_direct` is sqlx's way around.
    model.migrator.run_direct(None, conn, false).await?;
    Ok(())
}

/// Drops a copy of the model with everything in it.
pub async fn drop_schema(pool: &PgPool, schema: &str) -> Result<(), SchemaError> {
    check_name(schema)?;
    pool.execute(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .await?;
    Ok(())
}

/// Schema names are spliced into DDL, so only plain identifiers pass.
pub(crate) fn check_name(schema: &str) -> Result<(), SchemaError> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(SchemaError::Name(schema.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn only_plain_identifiers_are_schema_names() {
        assert!(check_name("read_model").is_ok());
        assert!(check_name("read_model_next2").is_ok());
        for bad in ["", "Read", "1x", "a-b", "a;drop", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
