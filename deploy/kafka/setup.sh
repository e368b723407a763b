#!/usr/bin/env bash
# One-shot set-up of the Kafka cluster's principals, run by the `kafka-setup` service of docker-compose.yml once
# the brokers are healthy (and safe to run again: both steps replace what exists):
#   1. a SCRAM-SHA-512 credential for the gateway and for every partner, from /run/secrets/kafka_users
#      (lines `name=password`; the partner's principal is User:<name>);
#   2. the ACLs of deploy/kafka/acls.txt (generated from gateway.bus.acls), so each partner may write only its own
#      in.<partner> topic and read only its own out./status./dlq. topics with group ids `<partner>.*`.
# It talks to the BROKER listener as the super user `admin` (SASL/PLAIN over TLS, /run/secrets/kafka_admin_client).
# Passwords are never echoed.
set -euo pipefail

BOOTSTRAP="kafka-1:9094,kafka-2:9094,kafka-3:9094"
ADMIN_CONFIG=/run/secrets/kafka_admin_client
BIN=/opt/kafka/bin

while IFS='=' read -r name password; do
  [[ -z "${name}" || "${name}" == \#* ]] && continue
  "${BIN}/kafka-configs.sh" --bootstrap-server "${BOOTSTRAP}" --command-config "${ADMIN_CONFIG}" --alter \
    --entity-type users --entity-name "${name}" --add-config "SCRAM-SHA-512=[password=${password}]" >/dev/null
  echo "SCRAM credential set for User:${name}"
done < /run/secrets/kafka_users

while read -r line; do
  [[ -z "${line}" || "${line}" == \#* ]] && continue
  # shellcheck disable=SC2086  # each line is a list of arguments
  "${BIN}/kafka-acls.sh" --bootstrap-server "${BOOTSTRAP}" --command-config "${ADMIN_CONFIG}" --add ${line} >/dev/null
done < /opt/gateway/kafka/acls.txt
echo "ACLs applied"
