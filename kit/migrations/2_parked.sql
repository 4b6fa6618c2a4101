-- Dead letters and what waits behind them, per consumer group. A message that cannot be
-- applied is the head (dead) of its key (the order id): every later message with that key is
-- parked here, not applied, so an order's events never apply out of order. An operator's
-- redrive (the head applied again) or discard (the head dropped), sent through the source
-- topic, releases the waiting messages in order. See docs/adr/0005.
CREATE TABLE parked (
    id              bigserial   PRIMARY KEY,
    consumer_group  text        NOT NULL,
    key             text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL,
    payload         bytea,
    headers         jsonb       NOT NULL DEFAULT '{}',
    -- true: the dead letter at the head of its key; false: a message waiting behind it.
    dead            boolean     NOT NULL,
    error           text        NOT NULL DEFAULT '',
    parked_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_group, topic, partition, "offset")
);

CREATE INDEX parked_by_key ON parked (consumer_group, key, id);
