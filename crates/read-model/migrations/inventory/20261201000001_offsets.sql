-- Where the inventory's read model has got to, per partition of its events
-- topic, written in the same SQL transaction as the rows it covers.
CREATE TABLE offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL CHECK (partition >= 0),
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, partition)
);
