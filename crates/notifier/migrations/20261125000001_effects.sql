-- Every side effect the notifier settled, by its stable id (`<kind>:<event id>`).
-- At-least-once effects are recorded after they succeed; at-most-once ones
-- are claimed ('attempting') before they are tried, so a replay skips them.
CREATE TABLE effects (
    effect_id   text        PRIMARY KEY,
    kind        text        NOT NULL,
    order_id    uuid        NOT NULL,
    event_id    uuid        NOT NULL,
    state       text        NOT NULL CHECK (state IN ('attempting', 'sent', 'failed')),
    attempts    integer     NOT NULL CHECK (attempts >= 0),
    last_error  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX effects_by_order ON effects (order_id);

-- Webhook endpoints that answered 410 Gone: nothing more is sent to them.
CREATE TABLE disabled_endpoints (
    url         text        PRIMARY KEY,
    reason      text        NOT NULL,
    disabled_at timestamptz NOT NULL DEFAULT now()
);
