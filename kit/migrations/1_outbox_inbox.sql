-- Shared by every service (kit migrations use versions below 100; services use 100 and up).

-- Transactional outbox: rows are inserted in the same transaction as the state change that
-- decided them; the relay publishes them in id order and deletes what the broker acknowledged.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Wakes the relay when a transaction that wrote to the outbox commits.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Inbox: every applied event id, so a redelivered event is skipped.
CREATE TABLE inbox (
    event_id    uuid        PRIMARY KEY,
    event_type  text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- The next offset to consume per partition, written in the same transaction as the effects.
-- The consumer seeks here on start-up and after every rebalance; Kafka's own offsets are unused.
CREATE TABLE consumer_offsets (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint  NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
