-- Backorders (allow_backorder): orders waiting for a restock, in arrival order (seq). Nothing
-- is reserved while an order waits; a restock reserves it whole, or the hold expires.
CREATE TABLE backorders (
    order_id   uuid        PRIMARY KEY,
    -- The OrderPlaced envelope, protobuf-encoded: decided again on restock, in its own chain.
    event      bytea       NOT NULL,
    held_at    timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    seq        bigserial   NOT NULL
);

CREATE INDEX backorders_by_expiry ON backorders (expires_at);

-- Each held order's lines: the demand per SKU (ListBackorders, the low-stock alert).
CREATE TABLE backorder_lines (
    order_id uuid   NOT NULL REFERENCES backorders (order_id) ON DELETE CASCADE,
    sku      text   NOT NULL,
    quantity bigint NOT NULL,
    PRIMARY KEY (order_id, sku)
);

CREATE INDEX backorder_lines_by_sku ON backorder_lines (sku);
