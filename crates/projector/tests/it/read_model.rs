//! The read model's schema.

use crate::support::database::TestDatabase;

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_again_as_a_no_op() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;

    projector::read_model::migrate(&db.pool).await?;
    projector::read_model::migrate(&db.pool).await?;

    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(
        applied as usize,
        projector::read_model::MIGRATOR.iter().count()
    );

    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'read_model_offsets' ORDER BY ordinal_position",
    )
    .fetch_all(&db.pool)
    .await?;
    assert_eq!(columns, ["topic", "partition", "next_offset"]);

    db.drop().await
}

#[tokio::test]
async fn the_offsets_table_rejects_a_negative_offset() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    projector::read_model::migrate(&db.pool).await?;

    let insert = sqlx::query("INSERT INTO read_model_offsets VALUES ('orders.events', 0, -1)")
        .execute(&db.pool)
        .await;

    assert!(insert.is_err(), "a negative offset must be refused");
    db.drop().await
}
