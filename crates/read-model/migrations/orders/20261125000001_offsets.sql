-- Where the read model has got to, per partition of the events topic. Written
-- in the same SQL transaction as the rows it covers, so the read model and its
-- position never disagree: the pipeline starts from these offsets, not from
-- Kafka's committed ones.
CREATE TABLE offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL CHECK (partition >= 0),
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, partition)
);
