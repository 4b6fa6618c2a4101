#!/usr/bin/env bash
# PostgreSQL's first start (docker-compose.yml): one database per service, each owned by the
# service's own role (password from the environment), and nobody else may connect to it. No
# service reads another's database, and none is the superuser.
set -euo pipefail
for service in order inventory fulfillment shipping; do
  case $service in order) database=orders ;; *) database=$service ;; esac
  password_var="${service^^}_PASSWORD"
  psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
    -v role="${service}_service" -v database="$database" -v password="${!password_var}" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
done
