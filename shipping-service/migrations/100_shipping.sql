-- shipping-service's own tables (service migrations use versions 100 and up).

CREATE TABLE shipments (
    order_id             uuid        PRIMARY KEY,
    status               text        NOT NULL,
    carrier              text        NOT NULL,
    carrier_service      text        NOT NULL,
    tracking_number      text        NOT NULL UNIQUE,
    weight_grams         integer     NOT NULL,
    cost_cents           bigint      NOT NULL,
    destination_country  text        NOT NULL,
    shipped_at           timestamptz NOT NULL DEFAULT now(),
    delivered_at         timestamptz
);
