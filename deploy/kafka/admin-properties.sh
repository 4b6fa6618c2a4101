#!/usr/bin/env bash
# Prints the Kafka admin client's settings (SASL/PLAIN as `admin`, $ADMIN_PASSWORD).
set -euo pipefail
password=$(printf '%s' "$ADMIN_PASSWORD" | sed 's/[\\"]/\\&/g')
cat <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$password";
PROPERTIES
