-- fulfillment-service's own tables (service migrations use versions 100 and up).

CREATE TABLE fulfillments (
    order_id        uuid        PRIMARY KEY,
    status          text        NOT NULL,
    -- The StockReserved payload: lines with bins and weights, address, service level.
    reserved        bytea       NOT NULL,
    tote_id         text        NOT NULL DEFAULT '',
    package_id      text        NOT NULL DEFAULT '',
    weight_grams    integer     NOT NULL DEFAULT 0,
    -- Automatic mode with a step delay: when the next step is due (NULL: nothing scheduled).
    next_step_at    timestamptz,
    -- The last event of this order's chain, so the next step continues its trace.
    cause_event_id  text        NOT NULL,
    correlation_id  text        NOT NULL,
    traceparent     text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX fulfillments_due ON fulfillments (next_step_at) WHERE next_step_at IS NOT NULL;
