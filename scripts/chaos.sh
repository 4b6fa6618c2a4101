#!/usr/bin/env bash
# The chaos run (exactly-once under faults). Starts the stack as up.sh does (PostgreSQL with
# fsync on, tansu on durable SQLite, the four services as separate processes), then places
# orders at a steady rate with `orderctl chaos place` while, at random moments and one at a
# time: each service is SIGKILLed and restarted (--kills times each), the broker is SIGKILLed
# and restarted on the same port, and PostgreSQL is stopped with `pg_ctl stop -m immediate` and
# started again. While the broker or PostgreSQL is down, every service must stay up and report
# NOT_SERVING, and report SERVING again once it is back; no service may exit by itself. Then
# `orderctl chaos check` waits for quiet, checks the invariants from the databases and the
# topics, and prints one summary line; the exit status is its verdict.
#
#   bash scripts/chaos.sh                          # full size: 5,000 orders at 25/s, 3 kills each
#   bash scripts/chaos.sh --orders 500 --kills 1 --instances 2   # the size CI runs
#
# Options: --orders N, --rate PER_SECOND, --kills PER_SERVICE, --seed N (the fault schedule and
# pauses, drawn by `orderctl chaos plan`; printed, so a run can be repeated), --instances N
# (instances per service, sharing the partitions; a kill SIGKILLs one instance, the kills taking
# the instances in turn, and the others must take its partitions).
# PROFILE=dev|release (default release).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ORDERS=5000 RATE=25 KILLS=3 SEED=$((RANDOM * 32768 + RANDOM)) INSTANCES=1
while (($#)); do
  case $1 in
    --orders) ORDERS=$2 ;;
    --rate) RATE=$2 ;;
    --kills) KILLS=$2 ;;
    --seed) SEED=$2 ;;
    --instances) INSTANCES=$2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
PROFILE=${PROFILE:-release}

# Free ports, so a chaos run can share the machine with up.sh or another run.
FREE_PORTS=1
# Every tenth order allows a backorder: held ones are served by the half-way restock or expire.
export METRICS_ADDR=off TOPIC_NAMESPACE=chaos BACKORDER_MAX_HOLD=${BACKORDER_MAX_HOLD:-15s}
start_stack
export KAFKA_BROKERS
STARTED=$(date +%s%N)
KILLED=0 RESTARTED=0 CRASHED=0 HEALTH_MISSES=0

# Prints a line of the fault log with the time since the orders started.
event() { printf '[%6.1fs] %s\n' "$(( ($(date +%s%N) - STARTED) / 1000000 ))e-3" "$*"; }
pause() { sleep "$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))"; } # milliseconds

kill_service() { # name down_ms instance
  local name=$1 instance=$3 key=$1-service
  if ((instance > 1)); then key+="#$instance"; fi
  local pid=${SERVICE_PIDS[$key]}
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  KILLED=$((KILLED + 1))
  event "SIGKILL $key (pid $pid)"
  pause "$2"
  start_service "$name" "$instance"
  wait_for_port "$(instance_port "$name" "$instance")" "$key"
  RESTARTED=$((RESTARTED + 1))
  event "restarted $key (pid ${SERVICE_PIDS[$key]})"
}

# Waits until every service reports `$1` (serving | not-serving) on grpc.health.v1.
expect_health() { # expected within what
  if "$BIN/orderctl" health --expect "$1" --within "$2" >"$STATE_DIR/health.log" 2>&1; then
    event "all four services report ${1^^} ($3; $(tail -n 1 "$STATE_DIR/health.log"))"
  else
    HEALTH_MISSES=$((HEALTH_MISSES + 1))
    event "health not as expected ($3):"
    cat "$STATE_DIR/health.log"
  fi
}

bounce_broker() {
  local port=${KAFKA_BROKERS##*:}
  kill -KILL "$TANSU_PID"
  wait "$TANSU_PID" 2>/dev/null || true
  event "SIGKILL tansu (pid $TANSU_PID)"
  expect_health not-serving 15s "broker down"
  start_tansu "$port" 2>/dev/null
  RESTARTED=$((RESTARTED + 1))
  event "restarted tansu on :$port"
  expect_health serving 30s "broker back"
}

bounce_postgres() {
  "${PG_CTL[@]}" -D "$PG_DATA" -m immediate stop >/dev/null
  event "pg_ctl stop -m immediate"
  expect_health not-serving 15s "PostgreSQL down"
  pg_start
  RESTARTED=$((RESTARTED + 1))
  event "PostgreSQL started again"
  expect_health serving 30s "PostgreSQL back"
}

# A service that exited without being killed crashed: counted (the run fails) and restarted.
check_alive() {
  local name i key
  for name in order inventory fulfillment shipping; do
    for ((i = 1; i <= INSTANCES; i++)); do
      key=$name-service
      if ((i > 1)); then key+="#$i"; fi
      if ! kill -0 "${SERVICE_PIDS[$key]}" 2>/dev/null; then
        CRASHED=$((CRASHED + 1))
        event "$key exited by itself; see $STATE_DIR/logs/$key.log"
        start_service "$name" "$i"
        wait_for_port "$(instance_port "$name" "$i")" "$key"
      fi
    done
  done
}

# The fault schedule, drawn from the seed: the broker and PostgreSQL once, each service --kills
# times, shuffled; spread over the first 85 % of the placing window, each at a random point of
# its own slot, one at a time (`orderctl chaos plan` prints it; see its lines below).
PLAN=$("$BIN/orderctl" chaos plan --seed "$SEED" --kills "$KILLS" --orders "$ORDERS" --rate "$RATE" --instances "$INSTANCES")
FAULTS=() DELAYS=() DOWNS=() VICTIMS=()
while read -r what a b c d; do
  case $what in
    window_ms) WINDOW_MS=$a ;;
    slot_ms) SLOT_MS=$a ;;
    fault) FAULTS+=("$a") DELAYS+=("$b") DOWNS+=("$c") VICTIMS+=("$d") ;;
  esac
done <<<"$PLAN"
log "chaos: $ORDERS orders at $RATE/s (~$((WINDOW_MS / 1000)) s), $INSTANCES instance(s) per service; faults: ${FAULTS[*]}; seed $SEED"
"$BIN/orderctl" chaos place --count "$ORDERS" --rate "$RATE" --out "$STATE_DIR/placed.json" \
  >"$STATE_DIR/place.log" 2>&1 &
PLACER=$!
STARTED=$(date +%s%N)
for i in "${!FAULTS[@]}"; do
  slot_end=$(( $(date +%s%N) / 1000000 + SLOT_MS ))
  pause "${DELAYS[i]}"
  case ${FAULTS[i]} in
    broker) bounce_broker ;;
    postgres) bounce_postgres ;;
    *) kill_service "${FAULTS[i]}" "${DOWNS[i]}" "${VICTIMS[i]}" ;;
  esac
  check_alive
  left=$((slot_end - $(date +%s%N) / 1000000))
  if ((left > 0)); then pause "$left"; fi
done
event "faults done: $KILLED kills, $RESTARTED restarts; waiting for the client"
if ! wait "$PLACER"; then
  cat "$STATE_DIR/place.log" >&2
  echo "the chaos client failed" >&2
  exit 1
fi
tail -n 1 "$STATE_DIR/place.log"
check_alive
"$BIN/orderctl" chaos check --placed "$STATE_DIR/placed.json" --kills "$KILLED" --restarts "$RESTARTED" \
  --crashes "$CRASHED" --health-misses "$HEALTH_MISSES"
