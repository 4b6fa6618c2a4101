-- inventory-service's own tables (service migrations use versions 100 and up).

CREATE TABLE products (
    sku                  text        PRIMARY KEY,
    name                 text        NOT NULL,
    bin_location         text        NOT NULL,
    weight_grams         integer     NOT NULL CHECK (weight_grams >= 0),
    low_stock_threshold  bigint      NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    on_hand              bigint      NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved             bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- available = on_hand - reserved never goes below zero: no overselling, whatever races.
    CONSTRAINT stock_not_oversold CHECK (reserved <= on_hand)
);

-- One row per order seen: what was reserved for it (or why it was rejected).
CREATE TABLE reservations (
    order_id    uuid        PRIMARY KEY,
    status      text        NOT NULL,
    -- The StockReserved or StockRejected payload, protobuf-encoded.
    decision    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
