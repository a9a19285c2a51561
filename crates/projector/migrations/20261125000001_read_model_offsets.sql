-- Where the read model's pipeline has got to, per partition of the events
-- topic. Written in the same SQL transaction as the rows it covers, so the read
-- model and its position can never disagree: at start-up the pipeline seeks to
-- these offsets, not to Kafka's committed ones.
CREATE TABLE read_model_offsets (
    topic       text    NOT NULL,
    partition   integer NOT NULL CHECK (partition >= 0),
    next_offset bigint  NOT NULL CHECK (next_offset >= 0),
    PRIMARY KEY (topic, partition)
);
