-- One row per SKU. `snapshot` is the fold's whole state (the JSON bytes, with
-- the version and recent command ids the validation rule needs); the other
-- columns are for queries. received = available + reserved + shipped always.
CREATE TABLE stock (
    id                  uuid        PRIMARY KEY,
    -- Unique, and the key of its pages (the order a person reads a list in).
    sku                 text        NOT NULL UNIQUE,
    received            bigint      NOT NULL CHECK (received >= 0),
    available           bigint      NOT NULL CHECK (available >= 0),
    reserved            bigint      NOT NULL CHECK (reserved >= 0),
    shipped             bigint      NOT NULL CHECK (shipped >= 0),
    low_stock_threshold bigint      NOT NULL CHECK (low_stock_threshold >= 0),
    version             bigint      NOT NULL CHECK (version >= 1),
    created_at          timestamptz,
    updated_at          timestamptz,
    snapshot            bytea       NOT NULL,
    CHECK (received = available + reserved + shipped)
);

-- The accepted events, each SKU's history.
CREATE TABLE stock_events (
    stock_id    uuid        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    event_id    uuid        NOT NULL,
    command_id  uuid        NOT NULL,
    event_type  text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    event       json        NOT NULL,
    PRIMARY KEY (stock_id, version)
);
