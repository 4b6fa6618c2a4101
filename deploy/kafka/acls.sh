#!/usr/bin/env bash
# One-shot (docker-compose.yml's kafka-acls): who may do what on the broker. Each service
# writes only its own topic and its dead-letter topic, reads only the topics it consumes, in
# its own consumer group, and may create exactly the topics it creates at start-up (the four
# of the flow, idempotently, and its dead-letter topic: no other name). `operator` (orderctl)
# writes the four flow topics (dead-letter answers travel on the source topic,
# docs/adr/0005) and reads every topic of the namespace; it needs no group (its readers
# assign partitions, offsets live in the services' databases). Re-running it adds nothing new.
# Usage: acls.sh <bootstrap server>
set -euo pipefail
umask 077
bootstrap=$1
ns=${TOPIC_NAMESPACE:-orderflow}
bash /opt/orderflow/admin-properties.sh >/tmp/admin.properties
acl() { /opt/kafka/bin/kafka-acls.sh --bootstrap-server "$bootstrap" --command-config /tmp/admin.properties --add "$@" >/dev/null; }

# service, its own topic's stem, the stems it consumes (the services' wiring: kit::topics).
while read -r service own consumed; do
  principal="User:$service"
  acl --allow-principal "$principal" --operation Write --operation Describe --topic "$ns.$own.v1"
  acl --allow-principal "$principal" --operation Write --operation Describe --topic "$ns.dlq.$service.v1"
  for stem in orders inventory fulfillment shipping "dlq.$service"; do
    acl --allow-principal "$principal" --operation Create --topic "$ns.$stem.v1"
  done
  for stem in ${consumed//,/ }; do
    acl --allow-principal "$principal" --operation Read --operation Describe --topic "$ns.$stem.v1"
  done
  acl --allow-principal "$principal" --operation Read --operation Describe --group "$ns.$service"
  echo "ACLs for $service: writes $ns.$own.v1, reads $consumed"
done <<SERVICES
order-service orders inventory,fulfillment,shipping
inventory-service inventory orders,shipping
fulfillment-service fulfillment inventory,orders
shipping-service shipping orders
SERVICES

for stem in orders inventory fulfillment shipping; do
  acl --allow-principal User:operator --operation Write --topic "$ns.$stem.v1"
done
acl --allow-principal User:operator --operation Read --operation Describe --resource-pattern-type prefixed --topic "$ns."
echo "ACLs for operator: writes the four flow topics, reads every $ns. topic"
