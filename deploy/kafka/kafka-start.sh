#!/usr/bin/env bash
# The Kafka container's start (docker-compose.yml): writes the SASL/PLAIN principals and their
# passwords (from the environment compose passes) where only the broker's user reads them,
# and the admin's client settings for the health check, then runs the image's own start.
set -euo pipefail
umask 077
# A password inside a JAAS string: backslashes and double quotes escaped.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
{
  echo "KafkaServer {"
  echo "  org.apache.kafka.common.security.plain.PlainLoginModule required"
  echo "  username=\"admin\" password=$(quoted "$ADMIN_PASSWORD")"
  echo "  user_admin=$(quoted "$ADMIN_PASSWORD")"
  echo "  user_operator=$(quoted "$OPERATOR_PASSWORD")"
  echo "  user_order-service=$(quoted "$ORDER_PASSWORD")"
  echo "  user_inventory-service=$(quoted "$INVENTORY_PASSWORD")"
  echo "  user_fulfillment-service=$(quoted "$FULFILLMENT_PASSWORD")"
  echo "  user_shipping-service=$(quoted "$SHIPPING_PASSWORD");"
  echo "};"
} >/tmp/kafka_jaas.conf
bash /opt/orderflow/admin-properties.sh >/tmp/admin.properties
unset ADMIN_PASSWORD OPERATOR_PASSWORD ORDER_PASSWORD INVENTORY_PASSWORD FULFILLMENT_PASSWORD SHIPPING_PASSWORD
exec /etc/kafka/docker/run
