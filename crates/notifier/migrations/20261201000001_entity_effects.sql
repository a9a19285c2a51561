-- Effects of every entity type: each row names the entity type and id whose
-- event caused it. Rows written before are the orders'.
ALTER TABLE effects RENAME COLUMN order_id TO entity_id;
ALTER TABLE effects ADD COLUMN entity_type text NOT NULL DEFAULT 'order';
ALTER TABLE effects ALTER COLUMN entity_type DROP DEFAULT;
ALTER INDEX effects_by_order RENAME TO effects_by_entity;
