#!/usr/bin/env bash
# The main command: sets up what is missing, builds, starts PostgreSQL (one database per
# service), the tansu broker and the four services, seeds a catalogue and places demo orders
# with orderctl, then keeps the stack running until Ctrl-C and stops everything it started.
# FULFILLMENT_MODE=manual makes warehouse staff (orderctl warehouse ...) confirm each step.
#
#   PROFILE=release|dev (default release)   ORDER_PORT/INVENTORY_PORT/... to move the gRPC ports
#   INSTANCES=N: N instances of every service, sharing the partitions (docs/adr/0010)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PROFILE=${PROFILE:-release}
start_stack

# A webhook receiver (orderctl webhooks listen): registered for every type, it verifies each
# delivery's signature and prints it, so the demo's webhooks show.
WEBHOOK_PORT=$(free_port)
WEBHOOK_LOG="$STATE_DIR/logs/webhooks.log"
"$BIN/orderctl" webhooks listen --register --addr "127.0.0.1:$WEBHOOK_PORT" >"$WEBHOOK_LOG" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "^listening on" "$WEBHOOK_LOG" && break; sleep 0.1; done
grep -q "^listening on" "$WEBHOOK_LOG" || { cat "$WEBHOOK_LOG" >&2; echo "the webhook receiver did not start" >&2; exit 1; }
log "webhook receiver on 127.0.0.1:$WEBHOOK_PORT (deliveries in $WEBHOOK_LOG)"

log "seeding a catalogue and placing demo orders"
if [ "${FULFILLMENT_MODE:-auto}" = manual ]; then
  "$BIN/orderctl" demo --orders 0 # orders wait for the warehouse; only the rejected one ends
else
  "$BIN/orderctl" demo
fi

for _ in $(seq 100); do grep -q "order.shipped" "$WEBHOOK_LOG" && break; sleep 0.1; done
log "webhooks received so far: $(grep -c ' verified ' "$WEBHOOK_LOG") (the last three below)"
grep ' verified ' "$WEBHOOK_LOG" | tail -3 | cut -c1-200
PG_BASE="postgres://postgres@127.0.0.1:$PG_PORT"
cat <<INFO

Orderflow is running. In another shell:

  export ORDER_ADDR=$ORDER_ADDR INVENTORY_ADDR=$INVENTORY_ADDR FULFILLMENT_ADDR=$FULFILLMENT_ADDR SHIPPING_ADDR=$SHIPPING_ADDR
  source $TOKENS_ENV   # development API tokens: ORDERFLOW_TOKEN (every scope) and one per role
  $BIN/orderctl stock list
  $BIN/orderctl order place --line MUG-BLUE:2 --line TEE-M:1
  $BIN/orderctl order place --line MUG-BLUE:1@1290 --currency EUR --payment-reference pay_decline_1   # declined: REJECTED
  $BIN/orderctl order get <order id>
  $BIN/orderctl order cancel <order id>
  $BIN/orderctl shipment deliver <tracking number>
  $BIN/orderctl order list --late                  # orders behind their delivery promise
  $BIN/orderctl webhooks list                      # tail -f $WEBHOOK_LOG: the receiver's verified deliveries
  PAYMENT_GATEWAY_URL=$PAYMENT_GATEWAY_URL $BIN/orderctl gateway ledger   # the payment gateway's authorisations, captures, voids

Operators (no token needed; these read the topics and the services' databases):

  export KAFKA_BROKERS=$KAFKA_BROKERS TOPIC_NAMESPACE=orderflow
  export ORDER_DATABASE_URL=$PG_BASE/orders INVENTORY_DATABASE_URL=$PG_BASE/inventory FULFILLMENT_DATABASE_URL=$PG_BASE/fulfillment SHIPPING_DATABASE_URL=$PG_BASE/shipping
  $BIN/orderctl events tail --from-beginning      # one JSON line per event; --order-id, --type, --topic
  $BIN/orderctl order trace <order id>            # the order's journey with the time at each hop
  $BIN/orderctl lag --watch 2                     # consumer lag, outbox, dead letters per service
  curl -s 127.0.0.1:9151/metrics                  # Prometheus metrics (9151-9154, one per service)

PostgreSQL: postgres://postgres@127.0.0.1:$PG_PORT/<orders|inventory|fulfillment|shipping>
Kafka (tansu): $KAFKA_BROKERS
Payment gateway (development, docs/payments.md): $PAYMENT_GATEWAY_URL
Logs: $STATE_DIR/logs/

Press Ctrl-C to stop everything.
INFO

# Stay up until Ctrl-C, or until a process of the stack dies.
wait -n "${PIDS[@]}"
echo "a process of the stack exited; stopping (logs in $STATE_DIR/logs)" >&2
KEEP_STATE=1
exit 1
