#!/usr/bin/env bash
# The main command: sets up what is missing, builds, starts PostgreSQL (one database per
# service), the tansu broker and the four services, seeds a catalogue and places demo orders
# with orderctl, then keeps the stack running until Ctrl-C and stops everything it started.
# FULFILLMENT_MODE=manual makes warehouse staff (orderctl warehouse ...) confirm each step.
#
#   PROFILE=release|dev (default release)   ORDER_PORT/INVENTORY_PORT/... to move the gRPC ports
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PROFILE=${PROFILE:-release}
declare -A PORTS=(
  [order]=${ORDER_PORT:-50051}
  [inventory]=${INVENTORY_PORT:-50052}
  [fulfillment]=${FULFILLMENT_PORT:-50053}
  [shipping]=${SHIPPING_PORT:-50054}
)
for name in order inventory fulfillment shipping; do
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORTS[$name]}") 2>/dev/null; then
    echo "port ${PORTS[$name]} ($name-service) is in use; free it or set ${name^^}_PORT" >&2
    exit 1
  fi
done

ensure_packages
ensure_tansu

log "building the services and orderctl ($PROFILE)"
cargo build --locked --profile "$PROFILE" --bins
BIN="$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

start_postgres
for name in orders inventory fulfillment shipping; do create_database "$name"; done
start_tansu

# Development tokens, fresh for every run: the services get their digests, the user the tokens.
TOKENS_ENV="$STATE_DIR/tokens.env"
new_token() { # name scopes variable
  local token
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s %s %s\n' "$1" "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" "$2" >>"$STATE_DIR/tokens"
  printf 'export %s=%s\n' "$3" "$token" >>"$TOKENS_ENV"
}
new_token dev-admin '*' ORDERFLOW_TOKEN
new_token dev-shop orders:write,orders:read ORDERFLOW_SHOP_TOKEN
new_token dev-inventory inventory:write,inventory:read ORDERFLOW_INVENTORY_TOKEN
new_token dev-warehouse warehouse ORDERFLOW_WAREHOUSE_TOKEN
new_token dev-carrier carrier ORDERFLOW_CARRIER_TOKEN
chmod 600 "$STATE_DIR/tokens" "$TOKENS_ENV"
# shellcheck disable=SC1090
source "$TOKENS_ENV"
export ORDERFLOW_TOKEN

mkdir -p "$STATE_DIR/logs"
start_service() { # name database
  local name=$1 database=$2
  AUTH_TOKENS_FILE="$STATE_DIR/tokens" \
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/$database" \
  KAFKA_BROKERS="$KAFKA_BROKERS" \
  GRPC_ADDR="127.0.0.1:${PORTS[$name]}" \
  METRICS_ADDR="127.0.0.1:$((9100 + ${PORTS[$name]} % 100))" \
  FULFILLMENT_MODE="${FULFILLMENT_MODE:-auto}" \
    "$BIN/$name-service" >"$STATE_DIR/logs/$name-service.log" 2>&1 &
  PIDS+=($!)
}
start_service order orders
start_service inventory inventory
start_service fulfillment fulfillment
start_service shipping shipping
for name in order inventory fulfillment shipping; do wait_for_port "${PORTS[$name]}" "$name-service"; done
log "services up: order :${PORTS[order]}, inventory :${PORTS[inventory]}, fulfillment :${PORTS[fulfillment]}, shipping :${PORTS[shipping]}"

export ORDER_ADDR="http://127.0.0.1:${PORTS[order]}" INVENTORY_ADDR="http://127.0.0.1:${PORTS[inventory]}" FULFILLMENT_ADDR="http://127.0.0.1:${PORTS[fulfillment]}" SHIPPING_ADDR="http://127.0.0.1:${PORTS[shipping]}"
log "seeding a catalogue and placing demo orders"
if [ "${FULFILLMENT_MODE:-auto}" = manual ]; then
  "$BIN/orderctl" demo --orders 0 # orders wait for the warehouse; only the rejected one ends
else
  "$BIN/orderctl" demo
fi

PG_BASE="postgres://postgres@127.0.0.1:$PG_PORT"
cat <<INFO

Orderflow is running. In another shell:

  export ORDER_ADDR=$ORDER_ADDR INVENTORY_ADDR=$INVENTORY_ADDR FULFILLMENT_ADDR=$FULFILLMENT_ADDR SHIPPING_ADDR=$SHIPPING_ADDR
  source $TOKENS_ENV   # development API tokens: ORDERFLOW_TOKEN (every scope) and one per role
  $BIN/orderctl stock list
  $BIN/orderctl order place --line MUG-BLUE:2 --line TEE-M:1
  $BIN/orderctl order get <order id>
  $BIN/orderctl order cancel <order id>
  $BIN/orderctl shipment deliver <tracking number>

Operators (no token needed; these read the topics and the services' databases):

  export KAFKA_BROKERS=$KAFKA_BROKERS TOPIC_NAMESPACE=orderflow
  export ORDER_DATABASE_URL=$PG_BASE/orders INVENTORY_DATABASE_URL=$PG_BASE/inventory FULFILLMENT_DATABASE_URL=$PG_BASE/fulfillment SHIPPING_DATABASE_URL=$PG_BASE/shipping
  $BIN/orderctl events tail --from-beginning      # one JSON line per event; --order-id, --type, --topic
  $BIN/orderctl order trace <order id>            # the order's journey with the time at each hop
  $BIN/orderctl lag --watch 2                     # consumer lag, outbox, dead letters per service
  curl -s 127.0.0.1:9151/metrics                  # Prometheus metrics (9151-9154, one per service)

PostgreSQL: postgres://postgres@127.0.0.1:$PG_PORT/<orders|inventory|fulfillment|shipping>
Kafka (tansu): $KAFKA_BROKERS
Logs: $STATE_DIR/logs/

Press Ctrl-C to stop everything.
INFO

# Stay up until Ctrl-C, or until a process of the stack dies.
wait -n "${PIDS[@]}"
echo "a process of the stack exited; stopping (logs in $STATE_DIR/logs)" >&2
KEEP_STATE=1
exit 1
