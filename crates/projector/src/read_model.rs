//! The PostgreSQL read model: its schema lives in `migrations/`, applied at start-up.

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

/// The read model's migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Brings the schema up to date; a no-op when it already is.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
