#!/usr/bin/env bash
# The monitoring check (run by scripts/test.sh): the stack with a real Prometheus
# (MONITORING=1), which must scrape every service (up == 1), then a poison message written
# as any broker client could (orderctl events send) must make the DeadLetterPresent alert fire.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PROFILE=${PROFILE:-dev}
MONITORING=1 FREE_PORTS=1 # free ports: the check shares the machine with anything
start_stack

# The value of an instant query's single result (empty when there is none).
query() {
  curl -fsS --get "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
wait_for() { # what query expected seconds
  local value=""
  for _ in $(seq "$(($4 * 2))"); do
    value=$(query "$2")
    [ "$value" = "$3" ] && { log "$1"; return 0; }
    sleep 0.5
  done
  echo "monitoring: $1 did not happen within $4 s (last: ${value:-no result}; logs in $STATE_DIR/logs)" >&2
  KEEP_STATE=1
  exit 1
}

wait_for "Prometheus scrapes all four services" 'count(up{job="orderflow"} == 1)' 4 60
wait_for "no alert fires on the healthy stack" 'count(ALERTS{alertstate="firing"}) or vector(0)' 0 10
KAFKA_BROKERS=$KAFKA_BROKERS "$BIN/orderctl" events send --topic orders --key poison-check --value 'not an event at all'
log "poison message written to orderflow.orders.v1"
wait_for "DeadLetterPresent fires" 'count(ALERTS{alertname="DeadLetterPresent", alertstate="firing"}) > bool 0' 1 90
# orderctl top, as an operator runs it, in an 80x24 terminal (tmux): every service SERVING and
# the dead letters counted.
tmux kill-session -t orderflow-top 2>/dev/null || true
tmux new-session -d -s orderflow-top -x 80 -y 24 \
  "env ORDER_ADDR=$ORDER_ADDR INVENTORY_ADDR=$INVENTORY_ADDR FULFILLMENT_ADDR=$FULFILLMENT_ADDR SHIPPING_ADDR=$SHIPPING_ADDR $BIN/orderctl top"
screen=""
for _ in $(seq 60); do
  screen=$(tmux capture-pane -p -t orderflow-top)
  if [ "$(grep -c ' SERVING' <<<"$screen")" = 4 ] && grep -q 'inventory-service .* [1-9][0-9]* *│' <<<"$screen"; then break; fi
  sleep 0.5
done
tmux send-keys -t orderflow-top q
printf '%s\n' "$screen" >"$STATE_DIR/top.txt"
if [ "$(grep -c ' SERVING' <<<"$screen")" != 4 ]; then
  printf '%s\n' "$screen" >&2
  echo "monitoring: orderctl top did not show four services SERVING" >&2
  KEEP_STATE=1
  exit 1
fi
log "orderctl top under tmux (80x24):"
printf '%s\n' "$screen"

firing=$(curl -fsS "$PROMETHEUS_URL/api/v1/alerts" | python3 -c 'import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
print(" ".join(sorted("%s(%s)" % (a["labels"]["alertname"], a["labels"].get("service", "")) for a in alerts if a["state"] == "firing")))')
echo "monitoring: targets up 4/4, firing after the poison: $firing; orderctl top shows 4 services SERVING -> PASS"
