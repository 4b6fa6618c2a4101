#!/usr/bin/env bash
# The benchmark command: sets up what is missing, starts the stack in release mode exactly as
# scripts/up.sh does (PostgreSQL with synchronous commit on, tansu, the four services), then
# `orderctl bench` measures, in one run on this machine, the raw limits (broker, database, bare
# gRPC) and the pipeline, and prints the figures and their ratios. Everything stops at the end.
#
#   bash scripts/bench.sh [--instances N] [orderctl bench options, e.g. --step-secs 15 --rates 100,200,400]
#
# --instances N runs N instances of every service (sharing the partitions; the bench prints how
# they were spread). PostgreSQL loads pg_stat_statements, so statements per order are counted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

if [ "${1:-}" = --instances ]; then
  INSTANCES=$2
  shift 2
fi
PROFILE=${PROFILE:-release}
FREE_PORTS=1 # the bench shares the machine with up.sh or anything on the default ports
PG_SETTINGS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
start_stack
create_database bench
PGPASSWORD=$PG_PASSWORD "$(pg_bindir)/psql" -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$PG_PORT/bench" \
  -c "CREATE EXTENSION pg_stat_statements" >/dev/null
pids=()
for service in "${!SERVICE_PIDS[@]}"; do pids+=(--pid "$service=${SERVICE_PIDS[$service]}"); done
log "benchmarking (reports and charts per step in $ROOT/bench/)"
# The database URL (with its password) through the environment, not the command line.
KAFKA_BROKERS="$KAFKA_BROKERS" BENCH_DATABASE_URL="$PG_BASE/bench" "$BIN/orderctl" bench \
  --out "$ROOT/bench" "${pids[@]}" \
  --comm tansu --comm postgres "$@"
