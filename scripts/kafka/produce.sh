#!/usr/bin/env bash
# Produces records to a topic on the broker(s) up.sh started (acks=all),
# creating the topic and its dead-letter topic first if they are missing.
#
#   scripts/kafka/produce.sh orders            10 sample JSON records
#   scripts/kafka/produce.sh orders 1000       1000 of them ({"id":i,"name":"record i"}, keys key-0..key-9)
#   printf 'k1\t{"id":1}\n{"id":2}\n' | scripts/kafka/produce.sh orders -
#                                              one record per line of stdin:
#                                              key<TAB>value, or a value alone
#
# Then, e.g.: KAFKA_BROKERS=127.0.0.1:19092 KAFKA_AUTH=none KAFKA_TOPICS=orders
# KAFKA_GROUP_ID=local bin/consumer run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
topic=${1:?usage: scripts/kafka/produce.sh TOPIC [COUNT|-]}
count=${2:-10}
[ "$count" = - ] && count=0
case $count in ''|*[!0-9]*) echo "COUNT must be a number or -" >&2; exit 2 ;; esac
cd "$here/../.."
go build -o bin/kafkaprobe ./test/kafkaprobe
bin/kafkaprobe topic -brokers "$KAFKA_BROKERS" -topic "$topic" > /dev/null
bin/kafkaprobe produce -brokers "$KAFKA_BROKERS" -topic "$topic" -n "$count"
