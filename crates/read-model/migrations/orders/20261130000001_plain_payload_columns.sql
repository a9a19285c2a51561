-- The snapshot is read back only by the pipeline, whole, and the history is
-- served as it was written: neither is queried inside. As `bytea` (the
-- snapshot's JSON bytes) and `json` (text, checked once) they cost
-- PostgreSQL no conversion to and from jsonb's binary form on every write.
ALTER TABLE orders ALTER COLUMN snapshot TYPE bytea USING convert_to(snapshot::text, 'UTF8');
ALTER TABLE order_events ALTER COLUMN event TYPE json USING event::json;
