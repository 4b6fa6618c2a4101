#!/usr/bin/env bash
# The main command: sets up what is missing, builds, starts PostgreSQL (one database per
# service), the tansu broker and the four services, seeds a catalogue and places demo orders
# with orderctl, then keeps the stack running until Ctrl-C and stops everything it started.
# FULFILLMENT_MODE=manual makes warehouse staff (orderctl warehouse ...) confirm each step.
#
#   PROFILE=release|dev (default release)   ORDER_PORT/INVENTORY_PORT/... to move the gRPC ports
#   INSTANCES=N: N instances of every service, sharing the partitions (docs/adr/0010)
#   TLS=1: every connection on TLS, with a throwaway CA (MTLS=1: client certificates too)
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
# With TLS=1, what the clients need besides the addresses.
CLIENT_TLS="" KAFKA_TLS=""
if [ "$TLS" = 1 ]; then
  CLIENT_TLS=$'\n'"  export ORDERFLOW_CA_FILE=$ORDERFLOW_CA_FILE   # TLS: the throwaway CA of every certificate here"
  if [ "$MTLS" = 1 ]; then
    CLIENT_TLS+=$'\n'"  export ORDERFLOW_CLIENT_CERT_FILE=$ORDERFLOW_CLIENT_CERT_FILE ORDERFLOW_CLIENT_KEY_FILE=$ORDERFLOW_CLIENT_KEY_FILE"
  fi
  KAFKA_TLS=$'\n'"  export KAFKA_SECURITY_PROTOCOL=$KAFKA_SECURITY_PROTOCOL KAFKA_SSL_CA_FILE=$KAFKA_SSL_CA_FILE"
fi
cat <<INFO

Orderflow is running. In another shell:

  export ORDER_ADDR=$ORDER_ADDR INVENTORY_ADDR=$INVENTORY_ADDR FULFILLMENT_ADDR=$FULFILLMENT_ADDR SHIPPING_ADDR=$SHIPPING_ADDR$CLIENT_TLS
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
  export ORDER_DATABASE_URL='$ORDER_DATABASE_URL' INVENTORY_DATABASE_URL='$INVENTORY_DATABASE_URL'
  export FULFILLMENT_DATABASE_URL='$FULFILLMENT_DATABASE_URL' SHIPPING_DATABASE_URL='$SHIPPING_DATABASE_URL'$KAFKA_TLS
  $BIN/orderctl events tail --from-beginning      # one JSON line per event; --order-id, --type, --topic
  $BIN/orderctl order trace <order id>            # the order's journey with the time at each hop
  $BIN/orderctl lag --watch 2                     # consumer lag, outbox, dead letters per service
  curl -s 127.0.0.1:9151/metrics                  # Prometheus metrics (9151-9154, one per service)

PostgreSQL: 127.0.0.1:$PG_PORT, one role per service owning its database (URLs above; SCRAM passwords$([ "$TLS" = 1 ] && echo ', TLS only'))
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
