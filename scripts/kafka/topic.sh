#!/usr/bin/env bash
# Creates topics on the broker(s) up.sh started, each with its dead-letter
# topic <topic>.dlq (the service refuses to start without it), with the
# cluster's default replication factor; a topic that exists is left alone.
#
#   scripts/kafka/topic.sh orders              orders and orders.dlq, 3 partitions
#   scripts/kafka/topic.sh orders payments 12  both, 12 partitions each
#
# Go builds the tool once (test/kafkaprobe, into bin/); no Java CLI is
# needed. KAFKA_BROKERS (from env.sh) says where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
partitions=3
topics=()
for a in "$@"; do
  case $a in
    ''|*[!0-9]*) topics+=("$a") ;;
    *) partitions=$a ;;
  esac
done
[ ${#topics[@]} -gt 0 ] || { echo "usage: scripts/kafka/topic.sh TOPIC... [PARTITIONS]" >&2; exit 2; }
cd "$here/../.."
go build -o bin/kafkaprobe ./test/kafkaprobe
for t in "${topics[@]}"; do
  bin/kafkaprobe topic -brokers "$KAFKA_BROKERS" -topic "$t" -partitions "$partitions"
done
