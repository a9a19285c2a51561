//! The PostgreSQL side of a lane: one batch folded and written in one SQL
//! transaction with the offsets it advances to, after checking under a row
//! lock that the stored offsets are the ones it starts from.

use super::*;

impl<P: Projection> Pipeline<P> {
    /// Folds and writes one batch in one transaction with its offsets;
    /// returns the new positions.
    pub(super) async fn write_batch(
        &self,
        records: &[Record<P>],
        lane: &[i32],
        positions: &Positions,
    ) -> Result<(Positions, Folded<P::Aggregate>), BatchError> {
        let mut next = positions.clone();
        for record in records {
            next.insert(record.partition, record.offset + 1);
        }
        let mut tx = self.pool.begin().await?;
        // Not waiting for the WAL flush is safe here: a commit PostgreSQL
        // loses in a crash takes its offsets with it, and the batch is folded
        // again from the log.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        // The rows exist before they are locked, so two writers of a
        // partition's first batch serialise too.
        sqlx::query(
            "INSERT INTO offsets (topic, partition, next_offset)
             SELECT $1, partition, 0 FROM UNNEST($2::int4[]) AS t(partition)
             ON CONFLICT (topic, partition) DO NOTHING",
        )
        .bind(&self.config.topic)
        .bind(lane)
        .execute(&mut *tx)
        .await?;
        // The row locks serialise writers of a partition; a rebuild's swap
        // locks the table.
        let stored: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, next_offset FROM offsets WHERE topic = $1 AND partition = ANY($2)
             ORDER BY partition FOR UPDATE",
        )
        .bind(&self.config.topic)
        .bind(lane)
        .fetch_all(&mut *tx)
        .await?;
        let mut found: Positions = lane.iter().map(|p| (*p, 0)).collect();
        found.extend(stored);
        if &found != positions {
            return Err(BatchError::Moved {
                expected: positions.clone(),
                found,
            });
        }

        let ids: Vec<Uuid> = records
            .iter()
            .filter_map(|r| r.batch.as_ref().map(|b| b.aggregate_id()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let current = self.projection.load(&mut tx, &ids).await?;
        let mut folded = Folded::<P::Aggregate>::default();
        for record in records {
            if let Some(batch) = &record.batch {
                folded.apply(batch.clone(), &current);
            }
        }
        folded.retain_changes(&current);
        self.projection.write(&mut tx, &folded).await?;

        let (partitions, offsets): (Vec<i32>, Vec<i64>) =
            next.iter().map(|(p, o)| (*p, *o)).unzip();
        sqlx::query(
            "INSERT INTO offsets (topic, partition, next_offset)
             SELECT $1, partition, next_offset FROM UNNEST($2::int4[], $3::int8[]) AS t(partition, next_offset)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
        )
        .bind(&self.config.topic)
        .bind(&partitions)
        .bind(&offsets)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((next, folded))
    }
}
