#!/usr/bin/env bash
# What open WatchOrder streams cost: starts the stack in release mode as scripts/bench.sh does,
# with FULFILLMENT_MODE=manual so every order stays open (RESERVED) and with it every stream,
# then `orderctl bench-watch` opens the streams, measures PostgreSQL's CPU while nothing
# happens, and drives PlaceOrder at a fixed rate with the streams open (first without them,
# for comparison). Everything stops at the end.
#
#   bash scripts/bench-watch.sh [orderctl bench-watch options, e.g. --watchers 5000 --rate 100 --duration 60s]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PROFILE=${PROFILE:-release}
export FULFILLMENT_MODE=${FULFILLMENT_MODE:-manual}
start_stack
log "benchmarking WatchOrder (reports and charts in $ROOT/bench-watch/)"
KAFKA_BROKERS="$KAFKA_BROKERS" "$BIN/orderctl" bench-watch --baseline --out "$ROOT/bench-watch" "$@"
