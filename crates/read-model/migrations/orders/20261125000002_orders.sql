-- Orders as the API lists them. `snapshot` is the fold's whole state (with the
-- version and the recent command ids the validation rule needs), so the
-- pipeline continues the fold from here; the other columns are for queries.
CREATE TABLE orders (
    id              uuid        PRIMARY KEY,
    customer_id     text        NOT NULL,
    email           text        NOT NULL,
    status          text        NOT NULL,
    total_cents     bigint      NOT NULL CHECK (total_cents >= 0),
    version         bigint      NOT NULL CHECK (version >= 1),
    created_at      timestamptz,
    updated_at      timestamptz,
    snapshot        jsonb       NOT NULL
);

-- Keyset pagination by id (UUIDv7, so roughly creation order) within a filter.
CREATE INDEX orders_by_customer ON orders (customer_id, id);
CREATE INDEX orders_by_status ON orders (status, id);

-- Written with their order in the same transaction (no foreign key to check
-- per row).
CREATE TABLE order_lines (
    order_id         uuid    NOT NULL,
    position         integer NOT NULL CHECK (position >= 0),
    sku              text    NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
    unit_price_cents bigint  NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, position)
);

-- The accepted events, the order's history.
CREATE TABLE order_events (
    order_id    uuid        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    event_id    uuid        NOT NULL,
    command_id  uuid        NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    event       jsonb       NOT NULL,
    PRIMARY KEY (order_id, version)
);
