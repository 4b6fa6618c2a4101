#!/usr/bin/env bash
# The benchmark command: sets up what is missing, starts the stack in release mode exactly as
# scripts/up.sh does (PostgreSQL with synchronous commit on, tansu, the four services), then
# `orderctl bench` measures, in one run on this machine, the raw limits (broker, database, bare
# gRPC) and the pipeline, and prints the figures and their ratios. Everything stops at the end.
#
#   bash scripts/bench.sh [orderctl bench options, e.g. --step-secs 15 --rates 100,200,400]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PROFILE=${PROFILE:-release}
start_stack
create_database bench
pids=()
for service in "${!SERVICE_PIDS[@]}"; do pids+=(--pid "$service=${SERVICE_PIDS[$service]}"); done
log "benchmarking (reports and charts per step in $ROOT/bench/)"
KAFKA_BROKERS="$KAFKA_BROKERS" "$BIN/orderctl" bench \
  --database-url "postgres://postgres@127.0.0.1:$PG_PORT/bench" --out "$ROOT/bench" "${pids[@]}" \
  --comm tansu --comm postgres "$@"
