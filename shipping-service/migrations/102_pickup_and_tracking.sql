-- The last mile (docs/shipments.md): a label waits for the courier's pick-up (LABELLED) before
-- it is collected (SHIPPED, shipped_at), then carrier scans move it (IN_TRANSIT,
-- OUT_FOR_DELIVERY, DELIVERY_FAILED) to an end (DELIVERED or RETURNED).

ALTER TABLE shipments RENAME COLUMN shipped_at TO labelled_at;
ALTER TABLE shipments ADD COLUMN shipped_at timestamptz;
-- Before this migration a label counted as collected.
UPDATE shipments SET shipped_at = labelled_at;
ALTER TABLE shipments
    ADD COLUMN service_level    text NOT NULL DEFAULT 'STANDARD',
    ADD COLUMN label            text NOT NULL DEFAULT '',
    ADD COLUMN promise_earliest date,
    ADD COLUMN promise_latest   date,
    -- The scan that is the parcel's state (an orderflow.common.v1.TrackingScan), once it has one.
    ADD COLUMN last_scan        bytea;

-- ListPickups and the simulated courier read the labels awaiting collection, oldest first.
CREATE INDEX shipments_awaiting_pickup ON shipments (carrier, labelled_at) WHERE status = 'LABELLED';

-- Every carrier scan, once per scan id of a parcel, in the order the carrier made them.
CREATE TABLE tracking_scans (
    tracking_number text        NOT NULL REFERENCES shipments (tracking_number),
    scan_id         text        NOT NULL,
    status          text        NOT NULL,
    location        text        NOT NULL,
    note            text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- False for a scan that arrived after a later one: history only.
    current         boolean     NOT NULL,
    PRIMARY KEY (tracking_number, scan_id)
);

CREATE INDEX tracking_scans_by_time ON tracking_scans (tracking_number, occurred_at);
