-- Backorders: ON_HOLD comes between PLACED and RESERVED, so the timeline's flow steps from
-- RESERVED on move up by one (project/domain.rs `step`); an ON_HOLD order says what it awaits.
UPDATE order_timeline SET step = step + 1 WHERE step >= 2;
ALTER TABLE orders ADD COLUMN hold_reason text NOT NULL DEFAULT '';

-- The open-orders index of 103 now leaves ON_HOLD orders in (they are not ended).
