#!/usr/bin/env bash
# Fresh secrets for docker-compose.yml, which has none of its own: every password (PostgreSQL's
# superuser, one role per service, one Kafka principal per service, the operator, the admin)
# into .env, and API tokens into .secrets/ (the services' token file of digests, and the clear
# tokens to source). Everything mode 600; an existing .env is kept unless --force.
#   bash scripts/compose-secrets.sh [--force] && docker compose up --build
set -euo pipefail
umask 077
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -e .env ] && [ "${1:-}" != --force ]; then
  echo ".env exists; keeping it (--force writes new secrets, and the running stack's stop working)" >&2
  exit 1
fi
secret() { openssl rand -hex 24; }
mkdir -p .secrets
{
  echo "# docker compose's secrets (scripts/compose-secrets.sh, $(date -u +%FT%TZ)); never commit this file."
  echo "ORDERFLOW_TOKENS_FILE=./.secrets/tokens"
  for name in DB KAFKA_ADMIN KAFKA_OPERATOR GRAFANA; do echo "ORDERFLOW_${name}_PASSWORD=$(secret)"; done
  for service in ORDER INVENTORY FULFILLMENT SHIPPING; do
    echo "ORDERFLOW_DB_${service}_PASSWORD=$(secret)"
    echo "ORDERFLOW_KAFKA_${service}_PASSWORD=$(secret)"
  done
} >.env
: >.secrets/tokens
: >.secrets/tokens.env
while read -r name scopes var; do
  token=$(secret)
  echo "$name $(printf '%s' "$token" | sha256sum | cut -d' ' -f1) $scopes" >>.secrets/tokens
  echo "$var=$token" >>.secrets/tokens.env
done <<TOKENS
admin * ORDERFLOW_TOKEN
shop orders:write,orders:read ORDERFLOW_SHOP_TOKEN
inventory inventory:write,inventory:read ORDERFLOW_INVENTORY_TOKEN
warehouse warehouse ORDERFLOW_WAREHOUSE_TOKEN
carrier carrier ORDERFLOW_CARRIER_TOKEN
TOKENS
# The services read the token file as their own user: readable, writable by its owner only.
chmod 644 .secrets/tokens
echo "wrote .env (passwords) and .secrets/tokens (digests); the API tokens are in .secrets/tokens.env:"
echo "  set -a; source .secrets/tokens.env; set +a; docker compose run --rm -e ORDERFLOW_TOKEN orderctl demo"
