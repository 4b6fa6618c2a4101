-- Webhooks (docs/webhooks.md): the endpoints other systems registered, and an outbox of
-- deliveries written in the transaction that decided each change (never for a rollback).

CREATE TABLE webhooks (
    webhook_id  uuid        PRIMARY KEY,
    url         text        NOT NULL,
    event_types text[]      NOT NULL,
    description text        NOT NULL,
    -- The signing key (base64 after "whsec_"); shown once, when created.
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    delivery_id     uuid        PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (webhook_id) ON DELETE CASCADE,
    event_type      text        NOT NULL,
    -- Deliveries of one subject (an order, or "sku:<sku>") reach an endpoint in this order.
    subject         text        NOT NULL,
    payload         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'WEBHOOK_DELIVERY_PENDING',
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_status     integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    seq             bigserial   NOT NULL
);

-- The sender's question: which pending deliveries are due, oldest first, first of their subject.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, subject, seq)
    WHERE state = 'WEBHOOK_DELIVERY_PENDING';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq DESC);
