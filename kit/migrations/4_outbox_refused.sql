-- Outbox rows the broker can never take (too large, invalid): moved here by the relay, with
-- the broker's answer, so one such row cannot stop every row behind it. Nothing our services
-- emit should ever land here (consumed events are bounded, docs/adr/0006); an operator reads it.
CREATE TABLE outbox_refused (
    id          bigint      PRIMARY KEY,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    payload     bytea       NOT NULL,
    headers     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    refused_at  timestamptz NOT NULL DEFAULT now(),
    error       text        NOT NULL
);
