-- Payments: the order's payment status (shown on the order), and the gateway calls due, one row
-- per order while a call is due (payment/store.rs). No foreign key to orders: a rebuild swaps
-- the orders table (rebuild.rs).
ALTER TABLE orders ADD COLUMN payment_status text NOT NULL DEFAULT 'PAYMENT_STATUS_UNSPECIFIED';

CREATE TABLE payments (
    order_id uuid PRIMARY KEY,
    -- authorize, capture or void
    action text NOT NULL,
    -- The envelope that made the call due: the event the call's outcome continues.
    cause bytea NOT NULL,
    due_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    -- While a worker calls the gateway for it; another takes it after this.
    leased_until timestamptz
);
CREATE INDEX payments_due ON payments (due_at);
