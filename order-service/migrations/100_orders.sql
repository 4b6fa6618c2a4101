-- order-service's own tables (service migrations use versions 100 and up).

CREATE TABLE orders (
    order_id          uuid        PRIMARY KEY,
    -- A repeated PlaceOrder with this key returns this order instead of placing another.
    idempotency_key   text        UNIQUE,
    -- The request as received (without its key), to tell a replay from a conflicting reuse.
    request           bytea       NOT NULL,
    customer_id       text        NOT NULL,
    -- The OrderPlaced payload: customer, lines, address, payment reference, service level.
    placed            bytea       NOT NULL,
    status            text        NOT NULL,
    rejection_reason  text        NOT NULL DEFAULT '',
    carrier           text        NOT NULL DEFAULT '',
    tracking_number   text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_by_customer ON orders (customer_id, order_id DESC);

-- Every event of an order, once each.
CREATE TABLE order_timeline (
    event_id     uuid        PRIMARY KEY,
    order_id     uuid        NOT NULL REFERENCES orders (order_id),
    event_type   text        NOT NULL,
    producer     text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    -- The step in the flow (PLACED=1 .. SHIPPED=6): causal order, whatever the topic lag.
    step         integer     NOT NULL,
    seq          bigserial   NOT NULL
);

CREATE INDEX order_timeline_by_order ON order_timeline (order_id, step, occurred_at, seq);
