#!/usr/bin/env bash
# Starts Apache Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1 and waits until
# every node has logged "Kafka Server started".
#
#   scripts/kafka/up.sh                 one node, broker and controller:
#                                       PLAINTEXT 19092, SASL_PLAINTEXT with
#                                       OAUTHBEARER (Kafka's built-in unsecured
#                                       JWT validator) 19093, controller 19094
#   KAFKA_NODES=3 scripts/kafka/up.sh   a controller on 19094 and three brokers
#                                       (PLAINTEXT/SASL 19092/19093,
#                                       19102/19103, 19112/19113), replication
#                                       factor 3, min.insync.replicas 2
#   KAFKA_VERSION=3.9.2 ...             another release (jars fetched once)
#
# KAFKA_KEEP_DATA=1 restarts the cluster last started in $KAFKA_RUN on its
# existing log dirs (a cluster restart); otherwise the cluster starts empty.
# See env.sh for the other settings; node.sh stops and starts single nodes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keep=${KAFKA_KEEP_DATA:-0}
run=${KAFKA_RUN:-/tmp/msk-consumer-kafka}
# (A server.properties without cluster.env: one node started by the scripts
# of before KAFKA_NODES, restarted as such.)
if [ "$keep" != 1 ] || { [ ! -f "$run/cluster.env" ] && [ ! -f "$run/server.properties" ]; }; then
  keep=0
  # A fresh cluster takes its settings from the environment alone.
  export KAFKA_ENV_NO_STATE=1
fi
. "$here/env.sh"
case $KAFKA_NODES in
  ''|*[!0-9]*|0) echo "KAFKA_NODES=$KAFKA_NODES: want 1 (one node) or the number of brokers" >&2; exit 2 ;;
esac
. "$here/lib.sh"
"$here/fetch.sh"

for n in $(node_ids); do
  if node_running "$n"; then
    echo "kafka already running (pid $(node_pid "$n"))"
    exit 0
  fi
done
# A cluster of another shape may still run here: never start over it.
for f in "$KAFKA_RUN"/pid "$KAFKA_RUN"/node*/pid; do
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "kafka already running in $KAFKA_RUN (pid $(cat "$f")); scripts/kafka/down.sh stops it"
    exit 1
  fi
done

if [ "$keep" = 0 ]; then
  rm -rf "$KAFKA_RUN"
  mkdir -p "$KAFKA_RUN"
  for n in $(node_ids); do write_props "$n"; done
  cluster_id=$(random_cluster_id)
  pids=()
  for n in $(node_ids); do format_node "$n" "$cluster_id" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || exit 1; done
  cat > "$KAFKA_RUN/cluster.env" <<ENV
KAFKA_VERSION=$KAFKA_VERSION
KAFKA_NODES=$KAFKA_NODES
KAFKA_PLAINTEXT_PORT=$KAFKA_PLAINTEXT_PORT
KAFKA_SASL_PORT=$KAFKA_SASL_PORT
KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT
KAFKA_PORT_STEP=$KAFKA_PORT_STEP
ENV
fi

# The controller first: the brokers register with it.
for n in $(node_ids | sort -n); do launch_node "$n"; done
secs=60
[ "$KAFKA_NODES" = 1 ] || secs=120
for n in $(node_ids | sort -n); do
  wait_node "$n" "$secs" || { "$here/down.sh" >/dev/null 2>&1 || true; exit 1; }
done

if [ "$KAFKA_NODES" = 1 ]; then
  echo "kafka $KAFKA_VERSION started: PLAINTEXT 127.0.0.1:$KAFKA_PLAINTEXT_PORT, SASL_PLAINTEXT/OAUTHBEARER 127.0.0.1:$KAFKA_SASL_PORT (pid $(node_pid 1))"
else
  echo "kafka $KAFKA_VERSION started: controller 127.0.0.1:$KAFKA_CONTROLLER_PORT (pid $(node_pid 0)), $KAFKA_NODES brokers: PLAINTEXT $KAFKA_BROKERS, SASL_PLAINTEXT/OAUTHBEARER $KAFKA_SASL_BROKERS"
fi
