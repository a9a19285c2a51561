-- Record first, deliver after: an effect is recorded 'pending' (with what to
-- send and where) before the input's offsets are committed, and delivered
-- from here, each destination in a lane of its own. A webhook has one row
-- per endpoint, so an effect is keyed by its id and its destination.
ALTER TABLE effects ADD COLUMN destination text;
UPDATE effects SET destination = CASE kind WHEN 'email' THEN 'smtp' ELSE 'webhook' END;
ALTER TABLE effects ALTER COLUMN destination SET NOT NULL;
ALTER TABLE effects DROP CONSTRAINT effects_pkey;
ALTER TABLE effects ADD PRIMARY KEY (effect_id, destination);

ALTER TABLE effects DROP CONSTRAINT effects_state_check;
ALTER TABLE effects ADD CONSTRAINT effects_state_check
    CHECK (state IN ('pending', 'attempting', 'sent', 'failed'));

-- Log order of recording: an entity's effects to one destination go out in it.
ALTER TABLE effects ADD COLUMN seq bigserial NOT NULL;
ALTER TABLE effects ADD COLUMN event_type text NOT NULL DEFAULT '';
-- The webhook body, or the e-mail (JSON: to, subject, text).
ALTER TABLE effects ADD COLUMN payload bytea NOT NULL DEFAULT '';
ALTER TABLE effects ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE effects ADD COLUMN next_attempt_at timestamptz;
-- While an instance is attempting it; expired, another may take it.
ALTER TABLE effects ADD COLUMN lease_until timestamptz;

-- A lane's due effects, and the earlier pending ones of the same entity.
CREATE INDEX effects_due ON effects (destination, next_attempt_at) WHERE state = 'pending';
CREATE INDEX effects_pending_by_entity ON effects (destination, entity_id, seq) WHERE state = 'pending';
CREATE INDEX effects_by_state ON effects (state, destination, seq);
