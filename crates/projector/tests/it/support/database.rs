use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

use uuid::Uuid;

/// A database of its own for one test, created from `DATABASE_URL`'s server.
pub struct TestDatabase {
    pub pool: PgPool,
    /// This database's URL, for services under test.
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://orders:orders@127.0.0.1:5432/orders".into());
        let admin: PgConnectOptions = url.parse()?;
        let name = format!("test_{}", Uuid::now_v7().simple());
        PgConnection::connect_with(&admin)
            .await?
            // The name is ours (a UUID), not input: safe to splice.
            .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(admin.clone().database(&name))
            .await?;
        let (base, _) = url.rsplit_once('/').unwrap_or((url.as_str(), ""));
        let url = format!("{base}/{name}");
        Ok(Self {
            pool,
            url,
            name,
            admin,
        })
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        self.pool.close().await;
        PgConnection::connect_with(&self.admin)
            .await?
            .execute(AssertSqlSafe(format!(r#"DROP DATABASE "{}""#, self.name)))
            .await?;
        Ok(())
    }
}
