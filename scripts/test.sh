#!/usr/bin/env bash
# The test command: sets up what is missing, then fmt, clippy and the whole test suite against
# a real PostgreSQL and a real tansu broker, then a small chaos run (scripts/chaos.sh: 500
# orders, two instances per service, each service killed once, the broker and PostgreSQL
# restarted once) and the monitoring check (scripts/monitoring-check.sh: Prometheus scrapes
# every service, a poison message fires the dead-letter alert). `.ci/run` runs exactly this.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_packages
ensure_tansu

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "promtool: the Prometheus configuration, the alert rules and their unit tests"
promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
# The Grafana dashboard's queries, each checked by promtool as a recording rule's expression.
python3 - "$STATE_DIR/dashboard-rules.yml" <<'PY'
import json, sys
panels = json.load(open("deploy/grafana/dashboards/orderflow.json"))["panels"]
rules = [{"record": "dashboard:q%d" % i, "expr": t["expr"]} for i, t in enumerate(t for p in panels for t in p["targets"])]
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
PY
promtool check rules "$STATE_DIR/dashboard-rules.yml"

log "docker-compose.yml through a Compose implementation's parser"
bash scripts/compose-check.sh

log "Kubernetes manifests against the Kubernetes schemas"
bash scripts/k8s-check.sh

log "building tests"
cargo test --workspace --locked --no-run

# Durability does not matter for a throwaway test cluster; speed does. It takes TLS connections
# only, verified (sslmode=verify-full) against a throwaway CA, with SCRAM passwords: every
# test's database connection goes the way production's does.
TLS=1 start_postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off
# The broker too is reached over TLS only (stunnel in front of tansu; KAFKA_SECURITY_PROTOCOL=ssl
# and KAFKA_SSL_CA_FILE exported for every Kafka client of the tests).
TLS=1 start_tansu
export TEST_DATABASE_URL="$PG_URL" KAFKA_BROKERS

log "cargo test"
set +e
cargo test --workspace --locked 2>&1 | tee "$STATE_DIR/test.log"
status=${PIPESTATUS[0]}
set -e
# cargo ends on whichever test binary ran last (often an empty doc-test run): sum them all up.
summary=$(awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$STATE_DIR/test.log")
echo "$summary"
if [ "$status" != 0 ]; then exit "$status"; fi

log "chaos run (small)"
set +e
env -u KAFKA_SECURITY_PROTOCOL -u KAFKA_SSL_CA_FILE PROFILE=dev bash scripts/chaos.sh --orders 500 --rate 20 --kills 1 --instances 2 2>&1 | tee "$STATE_DIR/chaos.log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" = 0 ]; then
  log "monitoring check"
  set +e
  env -u KAFKA_SECURITY_PROTOCOL -u KAFKA_SSL_CA_FILE PROFILE=dev bash scripts/monitoring-check.sh 2>&1 | tee "$STATE_DIR/monitoring.log"
  status=${PIPESTATUS[0]}
  set -e
fi
echo "$summary"
grep '^chaos:' "$STATE_DIR/chaos.log" || echo "chaos: no summary (see above)"
grep '^monitoring:' "$STATE_DIR/monitoring.log" 2>/dev/null || echo "monitoring: not run or no summary (see above)"
exit "$status"
