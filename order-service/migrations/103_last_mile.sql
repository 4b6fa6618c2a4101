-- The last mile: LABELLED comes between PACKED and SHIPPED, RETURNED ends beside DELIVERED, so
-- the timeline's flow steps from SHIPPED on move up by one (project/domain.rs `step`).
UPDATE order_timeline SET step = step + 1 WHERE step >= 6;

-- The delivery promise: the window expected now (moved by labelling and carrier scans) and the
-- window PlaceOrder promised (never changed: lateness is judged against its latest date).
ALTER TABLE orders
    ADD COLUMN promise_earliest  date,
    ADD COLUMN promise_latest    date,
    ADD COLUMN promised_earliest date,
    ADD COLUMN promised_latest   date,
    -- The carrier's scan that is the parcel's state (an orderflow.common.v1.TrackingScan).
    ADD COLUMN last_scan        bytea;

-- ListOrders(late): the orders not ended, by when they are expected.
CREATE INDEX orders_open_by_promise ON orders (promise_latest)
    WHERE status NOT IN ('DELIVERED', 'RETURNED', 'REJECTED', 'CANCELLED');
