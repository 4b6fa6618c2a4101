-- CancelOrder's reason, shown on a CANCELLED order.
ALTER TABLE orders ADD COLUMN cancellation_reason text NOT NULL DEFAULT '';
