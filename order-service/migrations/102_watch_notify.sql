-- WatchOrder's fan-out: every timeline row notifies channel `order_timeline` with its order id,
-- so the one listener of each order-service instance loads only the orders that have watchers,
-- instead of every watcher polling. NOTIFY is transactional: it is delivered on commit, never
-- for a rollback, and a transaction's repeats of one order id are delivered once.

CREATE FUNCTION order_timeline_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('order_timeline', NEW.order_id::text);
    RETURN NULL;
END
$$;

-- A rebuild swaps in a new timeline table and creates this trigger on it too (src/rebuild.rs).
CREATE TRIGGER order_timeline_notify AFTER INSERT ON order_timeline
    FOR EACH ROW EXECUTE FUNCTION order_timeline_notify();
