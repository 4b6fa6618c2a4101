#!/usr/bin/env bash
# Shared by scripts/up.sh and scripts/test.sh: installs what is missing (Debian packages, the
# pinned tansu broker), then starts a throwaway PostgreSQL cluster and a tansu broker on free
# ports under a temporary state directory. Everything started here is stopped on exit.
#
# TLS=1: every connection on TLS (a throwaway CA made with openssl under $STATE_DIR/tls;
# PostgreSQL with ssl=on and only TLS connections, the broker behind stunnel, gRPC over TLS);
# MTLS=1 also makes the services require client certificates. See docs/security.md.
set -euo pipefail
# Nothing the stack writes (tokens, passwords, keys, data, logs) is for anyone else.
umask 077

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TANSU_VERSION=0.6.0
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/orderflow.XXXXXX")
chmod 711 "$STATE_DIR" # PostgreSQL's user reaches its own directory inside, and only that
TLS=${TLS:-0}
MTLS=${MTLS:-0}
PIDS=()
PG_DATA=""

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# Debian packages: PostgreSQL's server, and a C toolchain for librdkafka (rdkafka-sys).
ensure_packages() {
  local missing=()
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v cc >/dev/null || missing+=(gcc)
  command -v g++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v perl >/dev/null || missing+=(perl)
  command -v sqlite3 >/dev/null || missing+=(sqlite3)
  command -v openssl >/dev/null || missing+=(openssl)
  [ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev) # librdkafka's TLS and SCRAM
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v prometheus >/dev/null || missing+=(prometheus) # MONITORING=1; promtool for the tests
  command -v tmux >/dev/null || missing+=(tmux)             # the monitoring check runs orderctl top in it
  command -v curl >/dev/null || missing+=(curl)
  command -v stunnel4 >/dev/null || missing+=(stunnel4) # the broker's TLS front (TLS=1, the tests)
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v cargo >/dev/null || { echo "cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2; exit 1; }
}

# The pinned broker, built once into ~/.cargo/bin and reused by every later run.
ensure_tansu() {
  TANSU="$CARGO_BIN/tansu"
  if [ -x "$TANSU" ] && "$TANSU" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return
  fi
  log "installing tansu $TANSU_VERSION into $CARGO_BIN (once; about 10 minutes on 2 cores)"
  cargo install --locked "tansu@$TANSU_VERSION" --features postgres,libsql,dynostore
}

# A port nothing listens on, below Linux's ephemeral range (32768-60999 here, see
# /proc/sys/net/ipv4/ip_local_port_range), so no client socket can be handed it meanwhile. A
# start that still loses a race for it retries on another (start_postgres, start_tansu).
# A port is handed out once per stack ($STATE_DIR/ports-given), so two listeners started one
# after the other never get the same one before either of them listens.
free_port() {
  local port low=10000 high given="$STATE_DIR/ports-given"
  high=$(($(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768) - 1))
  touch "$given"
  for _ in $(seq 200); do
    port=$((low + RANDOM % (high - low)))
    if ! grep -qx "$port" "$given" && ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port" >>"$given"
      echo "$port"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}

wait_for_port() { # port what [pid: fail as soon as it exits]
  for _ in $(seq 300); do
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
      echo "$2 exited before listening on port $1; see $STATE_DIR" >&2
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "$2 did not start listening on port $1; see $STATE_DIR" >&2
  return 1
}

# A throwaway cluster owned by an unprivileged user (initdb refuses root). Sets PG_URL (the
# admin URL) and PG_PORT. Extra server settings may be passed as arguments.
start_postgres() {
  local bindir run=()
  bindir=$(pg_bindir)
  # Data, socket and log live in one directory the server's user owns.
  local dir="$STATE_DIR/postgres"
  PG_DATA="$dir/data"
  mkdir -p "$dir"
  # Password (SCRAM) authentication for every connection; the superuser's password is fresh.
  PG_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  printf '%s\n' "$PG_PASSWORD" >"$dir/pwfile"
  local tls=()
  if [ "$TLS" = 1 ]; then
    make_pki
    cp "$STATE_DIR/tls/server.pem" "$STATE_DIR/tls/server-key.pem" "$dir/"
    tls=(-c ssl=on -c "ssl_cert_file=$dir/server.pem" -c "ssl_key_file=$dir/server-key.pem")
  fi
  if [ "$(id -u)" = 0 ]; then
    chmod 711 "$STATE_DIR" # the server's user reaches its own directory, and only that
    chown -R postgres: "$dir"
    run=(runuser -u postgres --)
  fi
  PG_CTL=("${run[@]}" "$bindir/pg_ctl")
  "${run[@]}" "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=scram-sha-256 --pwfile="$dir/pwfile" -E UTF8 \
    >"$STATE_DIR/initdb.log" 2>&1
  rm -f "$dir/pwfile"
  # With TLS, a TCP connection without it is refused outright.
  if [ "$TLS" = 1 ]; then sed -i 's/^host\(\s\)/hostssl\1/' "$PG_DATA/pg_hba.conf"; fi
  local attempt
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(free_port)
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    PG_OPTIONS="-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c password_encryption=scram-sha-256 ${tls[*]} $*"
    if pg_start; then break; fi
    [ "$attempt" = 5 ] && { echo "PostgreSQL did not start; see $dir/postgres.log" >&2; return 1; }
    log "PostgreSQL could not start on port $PG_PORT (taken meanwhile?); trying another port"
  done
  # PG_QUERY: what every URL to this server adds (with TLS: the server's name verified).
  PG_QUERY=""
  if [ "$TLS" = 1 ]; then PG_QUERY="?sslmode=verify-full&sslrootcert=$STATE_DIR/tls/ca.pem"; fi
  PG_BASE="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT"
  PG_URL="$PG_BASE/postgres$PG_QUERY"
}

# A throwaway certificate authority (openssl, P-256) and the certificates the stack uses, under
# $STATE_DIR/tls: server.pem for localhost and 127.0.0.1 (the services, PostgreSQL, the
# broker's TLS front), client.pem for mTLS. Made once per run.
make_pki() {
  local tls="$STATE_DIR/tls"
  [ -f "$tls/ca.pem" ] && return
  mkdir -p "$tls"
  local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${key[@]}" -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" -days 30 \
    -subj "/CN=Orderflow development CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  leaf() { # name subject extensions
    openssl req "${key[@]}" -keyout "$tls/$1-key.pem" -out "$tls/$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" >"$tls/$1.ext"
    openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
      -out "$tls/$1.pem" -days 30 -extfile "$tls/$1.ext" 2>/dev/null
    rm -f "$tls/$1.csr" "$tls/$1.ext"
  }
  leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  leaf client "/CN=orderflow-operator" "extendedKeyUsage=clientAuth"
  chmod 644 "$tls/ca.pem" "$tls/server.pem" "$tls/client.pem"
  log "TLS: throwaway CA $tls/ca.pem"
}

# Starts the cluster made by start_postgres (again), with the same options.
pg_start() {
  "${PG_CTL[@]}" -D "$PG_DATA" -l "$(dirname "$PG_DATA")/postgres.log" -o "$PG_OPTIONS" -w start >/dev/null
}

create_database() {
  psql_admin -c "CREATE DATABASE $1" >/dev/null
}

psql_admin() {
  local bindir
  bindir=$(pg_bindir)
  # The password through the environment, never on a command line others can read.
  PGPASSWORD=$PG_PASSWORD "$bindir/psql" -q -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$PG_PORT/postgres$PG_QUERY" "$@"
}

# A role of its own for a service, owning only its database (created here), with a fresh
# password; sets DB_URL to the service's URL.
create_service_database() { # database role
  local password
  password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  psql_admin -v role="$2" -v database="$1" -v password="$password" >/dev/null <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
  DB_URL="postgres://$2:$password@127.0.0.1:$PG_PORT/$1$PG_QUERY"
}

# tansu with durable SQLite storage, on a free port or (to restart it) the given one. Sets
# KAFKA_BROKERS and TANSU_PID. With TLS=1, tansu (which has no TLS of its own) listens on the
# loopback behind stunnel, and advertises stunnel's port: clients reach it only over TLS.
start_tansu() {
  local port attempt advertised
  for attempt in 1 2 3 4 5; do
    port=${1:-$(free_port)}
    advertised=$port
    if [ "$TLS" = 1 ]; then advertised=${KAFKA_TLS_PORT:=$(free_port)}; fi
    log "starting tansu $TANSU_VERSION on 127.0.0.1:$port"
    # tansu reads the sqlite path relative to its working directory.
    (cd "$STATE_DIR" && exec "$TANSU" broker \
      --storage-engine "sqlite://tansu.db" \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$advertised" >>"$STATE_DIR/tansu.log" 2>&1) &
    TANSU_PID=$!
    PIDS+=("$TANSU_PID")
    if wait_for_port "$port" tansu "$TANSU_PID"; then break; fi
    [ "$attempt" = 5 ] && return 1
    log "tansu could not listen on port $port; trying again"
  done
  # tansu 0.6's SQLite schema has no index for a record's headers: every record it serves
  # scans every header of the log, so a fetch gets slower as the log grows (minutes for a
  # topic of 14,000 events). The index makes it a lookup (docs/adr/0003).
  sqlite3 -cmd ".timeout 10000" "$STATE_DIR/tansu.db" "CREATE INDEX IF NOT EXISTS header_by_record ON header (topition, offset_id)"
  KAFKA_BROKERS="127.0.0.1:$port"
  if [ "$TLS" = 1 ] && [ -z "${STUNNEL_PID:-}" ]; then
    make_pki
    cat >"$STATE_DIR/stunnel.conf" <<CONF
foreground = yes
pid =
[kafka]
accept = 127.0.0.1:$KAFKA_TLS_PORT
connect = 127.0.0.1:$port
cert = $STATE_DIR/tls/server.pem
key = $STATE_DIR/tls/server-key.pem
sslVersionMin = TLSv1.2
CONF
    stunnel4 "$STATE_DIR/stunnel.conf" >>"$STATE_DIR/stunnel.log" 2>&1 &
    STUNNEL_PID=$!
    PIDS+=("$STUNNEL_PID")
    wait_for_port "$KAFKA_TLS_PORT" "stunnel (the broker's TLS)" "$STUNNEL_PID"
    log "the broker on TLS at 127.0.0.1:$KAFKA_TLS_PORT (stunnel in front of tansu)"
  fi
  if [ "$TLS" = 1 ]; then
    KAFKA_BROKERS="127.0.0.1:$KAFKA_TLS_PORT"
    export KAFKA_SECURITY_PROTOCOL=ssl KAFKA_SSL_CA_FILE="$STATE_DIR/tls/ca.pem"
  fi
}

# The whole stack, as scripts/up.sh and scripts/bench.sh run it: builds ($PROFILE), starts
# PostgreSQL with one database per service, tansu, fresh development tokens and the four
# services (ports from ORDER_PORT etc.). Exports the clients' settings; SERVICE_PIDS maps each
# service to its process.
start_stack() {
  # INSTANCES (default 1): instances per service, sharing the partitions (docs/adr/0010).
  # tansu 0.6 reads every partition of a fetch from its storage and holds each fetch for the
  # whole fetch wait, so each partition costs it CPU even when idle: one partition per topic
  # and instance gives every instance its share and keeps tansu's CPU for real work (ordering
  # is per order id either way). See docs/adr/0003. Apache Kafka (docker-compose) has 6.
  INSTANCES=${INSTANCES:-1}
  export TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-$INSTANCES} KAFKA_FETCH_WAIT_MS=${KAFKA_FETCH_WAIT_MS:-10}
  ensure_packages
  ensure_tansu
  # The broker is this stack's own: its clients connect as start_tansu says, nothing else.
  if [ "$TLS" != 1 ]; then unset KAFKA_SECURITY_PROTOCOL KAFKA_SSL_CA_FILE; fi

  log "building the services and orderctl ($PROFILE)"
  cargo build --locked --profile "$PROFILE" --bins
  BIN="$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

  # The default ports are written once, in the proto crate; ORDER_PORT etc. move them.
  # FREE_PORTS=1 (the checks: chaos, monitoring, bench) puts every listener of the stack on a
  # free port instead, so a check shares the machine with up.sh or anything on the defaults.
  declare -gA PORTS=()
  local name port var
  while read -r name port; do
    var="${name^^}_PORT"
    [ "${FREE_PORTS:-0}" = 1 ] && port=$(free_port)
    PORTS[$name]=${!var:-$port}
  done < <("$BIN/orderctl" ports)
  for name in order inventory fulfillment shipping gateway; do
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORTS[$name]}") 2>/dev/null; then
      echo "port ${PORTS[$name]} ($name-service) is in use; free it or set ${name^^}_PORT" >&2
      exit 1
    fi
  done

  # shellcheck disable=SC2086 # PG_SETTINGS: extra server settings, e.g. "-c name=value ..."
  start_postgres ${PG_SETTINGS:-}
  declare -gA DATABASES=([order]=orders [inventory]=inventory [fulfillment]=fulfillment [shipping]=shipping)
  declare -gA DB_URLS=()
  for name in order inventory fulfillment shipping; do
    create_service_database "${DATABASES[$name]}" "${name}_service"
    DB_URLS[$name]=$DB_URL
  done
  start_tansu

  # Development tokens, fresh for every run: the services get their digests, the user the
  # tokens. orderctl (built above) writes both files, mode 600, in the kit's token format.
  TOKENS_ENV="$STATE_DIR/tokens.env"
  new_token() { # name scopes variable
    "$BIN/orderctl" tokens new --file "$STATE_DIR/tokens" --env "$TOKENS_ENV" --name "$1" --scopes "$2" --var "$3"
  }
  new_token dev-admin '*' ORDERFLOW_TOKEN
  new_token dev-shop orders:write,orders:read ORDERFLOW_SHOP_TOKEN
  new_token dev-inventory inventory:write,inventory:read ORDERFLOW_INVENTORY_TOKEN
  new_token dev-warehouse warehouse ORDERFLOW_WAREHOUSE_TOKEN
  new_token dev-carrier carrier ORDERFLOW_CARRIER_TOKEN
  # shellcheck disable=SC1090
  source "$TOKENS_ENV"
  export ORDERFLOW_TOKEN

  mkdir -p "$STATE_DIR/logs"
  # The development payment gateway (docs/payments.md); PAYMENT_GATEWAY_URL (exported) points
  # order-service at another one instead.
  if [ -z "${PAYMENT_GATEWAY_URL:-}" ]; then
    "$BIN/orderctl" gateway serve --addr "127.0.0.1:${PORTS[gateway]}" --ledger "$STATE_DIR/gateway-ledger.jsonl" \
      >>"$STATE_DIR/logs/gateway.log" 2>&1 &
    PIDS+=($!)
    wait_for_port "${PORTS[gateway]}" "payment gateway" "$!"
    export PAYMENT_GATEWAY_URL="http://127.0.0.1:${PORTS[gateway]}"
  fi
  declare -gA SERVICE_PIDS=()
  # The services' environment never holds the clients' tokens (only AUTH_TOKENS_FILE's digests).
  # Nor the operators' database URLs (every role's password) or their client key.
  local unset_tokens=()
  for var in $(cut -d= -f1 "$TOKENS_ENV") ORDER_DATABASE_URL INVENTORY_DATABASE_URL FULFILLMENT_DATABASE_URL \
    SHIPPING_DATABASE_URL TEST_DATABASE_URL ORDERFLOW_CLIENT_KEY_FILE PGPASSWORD; do
    unset_tokens+=(-u "$var")
  done
  SERVICE_TLS=()
  if [ "$TLS" = 1 ]; then
    SERVICE_TLS=(TLS_CERT_FILE="$STATE_DIR/tls/server.pem" TLS_KEY_FILE="$STATE_DIR/tls/server-key.pem")
    if [ "$MTLS" = 1 ]; then SERVICE_TLS+=(TLS_CLIENT_CA_FILE="$STATE_DIR/tls/ca.pem"); fi
  fi
  # (Re)starts one instance of a service (default the first); its log is appended to.
  # METRICS_ADDR=off (exported) turns the endpoints off; unset, the first instance listens where
  # kit/src/config.rs (default_metrics_addr) derives from its gRPC port (127.0.0.1:9151-9154
  # beside 50051-50054). Further instances, and every instance under FREE_PORTS=1, listen on
  # free ports, for gRPC and metrics alike. INSTANCE_METRICS holds every metrics port.
  # SERVICE_PIDS keys: order-service, order-service#2, ...
  declare -gA INSTANCE_PORTS=() INSTANCE_METRICS=()
  start_service() { # name [instance]
    local name=$1 instance=${2:-1} key=$1-service port metrics=()
    if ((instance > 1)); then
      key+="#$instance"
      port=${INSTANCE_PORTS[$key]:-$(free_port)}
      INSTANCE_PORTS[$key]=$port
    else
      port=${PORTS[$name]}
    fi
    if [ "${METRICS_ADDR:-}" != off ] && [ -z "${INSTANCE_METRICS[$key]:-}" ]; then
      if ((instance > 1)) || [ "${FREE_PORTS:-0}" = 1 ]; then
        INSTANCE_METRICS[$key]=$(free_port)
      else
        INSTANCE_METRICS[$key]=$((9100 + port % 100))
      fi
    fi
    if [ -n "${INSTANCE_METRICS[$key]:-}" ]; then metrics=(METRICS_ADDR="127.0.0.1:${INSTANCE_METRICS[$key]}"); fi
    env "${unset_tokens[@]}" AUTH_TOKENS_FILE="$STATE_DIR/tokens" \
      DATABASE_URL="${DB_URLS[$name]}" \
      "${SERVICE_TLS[@]}" \
      KAFKA_BROKERS="$KAFKA_BROKERS" \
      GRPC_ADDR="127.0.0.1:$port" \
      PAYMENT_GATEWAY_URL="$PAYMENT_GATEWAY_URL" \
      FULFILLMENT_MODE="${FULFILLMENT_MODE:-auto}" \
      "${metrics[@]}" \
      "$BIN/$name-service" >>"$STATE_DIR/logs/$key.log" 2>&1 &
    PIDS+=($!)
    SERVICE_PIDS[$key]=$!
  }
  # The port an instance listens on.
  instance_port() { # name instance
    if (($2 > 1)); then echo "${INSTANCE_PORTS[$1-service#$2]}"; else echo "${PORTS[$1]}"; fi
  }
  for name in order inventory fulfillment shipping; do
    for ((i = 1; i <= INSTANCES; i++)); do start_service "$name" "$i"; done
  done
  for name in order inventory fulfillment shipping; do
    for ((i = 1; i <= INSTANCES; i++)); do wait_for_port "$(instance_port "$name" "$i")" "$name-service #$i"; done
  done
  if [ "${MONITORING:-0}" = 1 ]; then start_prometheus; fi
  log "services up ($INSTANCES instance(s) each): order :${PORTS[order]}, inventory :${PORTS[inventory]}, fulfillment :${PORTS[fulfillment]}, shipping :${PORTS[shipping]}"

  # Operators reach each service's database as its own role (it owns the database).
  export ORDER_DATABASE_URL="${DB_URLS[order]}" INVENTORY_DATABASE_URL="${DB_URLS[inventory]}" \
    FULFILLMENT_DATABASE_URL="${DB_URLS[fulfillment]}" SHIPPING_DATABASE_URL="${DB_URLS[shipping]}"
  local scheme=http
  if [ "$TLS" = 1 ]; then
    scheme=https
    export ORDERFLOW_CA_FILE="$STATE_DIR/tls/ca.pem"
    if [ "$MTLS" = 1 ]; then
      export ORDERFLOW_CLIENT_CERT_FILE="$STATE_DIR/tls/client.pem" ORDERFLOW_CLIENT_KEY_FILE="$STATE_DIR/tls/client-key.pem"
    fi
  fi
  export ORDER_ADDR="$scheme://127.0.0.1:${PORTS[order]}" INVENTORY_ADDR="$scheme://127.0.0.1:${PORTS[inventory]}" FULFILLMENT_ADDR="$scheme://127.0.0.1:${PORTS[fulfillment]}" SHIPPING_ADDR="$scheme://127.0.0.1:${PORTS[shipping]}"
}

# Prometheus (Debian's) scraping every instance's /metrics with Orderflow's alerts
# (deploy/prometheus/alerts.yml), on a free port of the loopback: PROMETHEUS_URL.
start_prometheus() {
  local targets=() key
  for key in "${!INSTANCE_METRICS[@]}"; do targets+=("'127.0.0.1:${INSTANCE_METRICS[$key]}'"); done
  cp "$ROOT/deploy/prometheus/alerts.yml" "$STATE_DIR/alerts.yml"
  cat >"$STATE_DIR/prometheus.yml" <<CONFIG
global: { scrape_interval: 2s, evaluation_interval: 2s }
rule_files: [alerts.yml]
scrape_configs:
  - job_name: orderflow
    static_configs: [{ targets: [$(IFS=,; echo "${targets[*]}")] }]
CONFIG
  PROMETHEUS_PORT=$(free_port)
  prometheus --config.file="$STATE_DIR/prometheus.yml" --storage.tsdb.path="$STATE_DIR/prometheus" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >>"$STATE_DIR/logs/prometheus.log" 2>&1 &
  PIDS+=($!)
  wait_for_port "$PROMETHEUS_PORT" prometheus "$!"
  export PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT"
  log "Prometheus on $PROMETHEUS_URL (targets ${targets[*]}; alerts: deploy/prometheus/alerts.yml)"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    "${PG_CTL[@]}" -D "$PG_DATA" -m fast stop >/dev/null 2>&1 || true
  fi
  # Ctrl-C (130) and SIGTERM (143) are normal stops; anything else keeps the evidence.
  if [ "${KEEP_STATE:-0}" = 1 ] || { [ "$status" != 0 ] && [ "$status" != 130 ] && [ "$status" != 143 ]; }; then
    echo "logs and data kept in $STATE_DIR" >&2
  else
    rm -rf "$STATE_DIR"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
