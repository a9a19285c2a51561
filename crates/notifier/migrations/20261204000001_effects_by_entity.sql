-- The effects of one order (or SKU), newest first, for the console's order
-- page: an index instead of a scan of every effect.
CREATE INDEX IF NOT EXISTS effects_by_entity ON effects (entity_id, seq DESC);
