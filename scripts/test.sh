#!/usr/bin/env bash
# The test command: sets up what is missing, then fmt, clippy and the whole test suite against
# a real PostgreSQL and a real tansu broker. `.ci/run` runs exactly this.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_packages
ensure_tansu

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "building tests"
cargo test --workspace --locked --no-run

# Durability does not matter for a throwaway test cluster; speed does.
start_postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off
start_tansu
export TEST_DATABASE_URL="$PG_URL" KAFKA_BROKERS

log "cargo test"
cargo test --workspace --locked
