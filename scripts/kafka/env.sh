# Shared settings of the real-broker scripts. Source it (POSIX sh or bash:
# a Makefile recipe may `. scripts/kafka/env.sh` after up.sh).
#
#   KAFKA_VERSION          the Apache Kafka release: 4.x (4.4.0 unless set) or 3.9.x
#   KAFKA_NODES            1 (default): one combined broker+controller, as
#                          always; N>1: a dedicated KRaft controller (node 0)
#                          and N brokers (nodes 1..N) with replication factor
#                          3 and min.insync.replicas 2, as MSK sets them
#   KAFKA_RUN              data, logs and pids (node 1 of one: the directory
#                          itself; of several: $KAFKA_RUN/node<n>)
#   KAFKA_PLAINTEXT_PORT   broker 1's PLAINTEXT listener (19092)
#   KAFKA_SASL_PORT        broker 1's SASL_PLAINTEXT/OAUTHBEARER listener (19093)
#   KAFKA_CONTROLLER_PORT  the controller's listener (19094)
#   KAFKA_PORT_STEP        broker n listens on broker 1's ports plus
#                          (n-1)*KAFKA_PORT_STEP (10: 19102/19103, 19112/19113)
#   KAFKA_HOME_DIR         the jar cache; each version in a directory of its own
#
# up.sh records the settings a cluster was started with in
# $KAFKA_RUN/cluster.env; here they fill in what the environment leaves
# unset, so that down.sh, node.sh, a restart (KAFKA_KEEP_DATA=1) and a test
# that sources this file find the cluster that runs.
#
# Exports KAFKA_BROKERS and KAFKA_SASL_BROKERS: the bootstrap lists
# (host:port,...), for KAFKA_TEST_BROKERS and KAFKA_TEST_SASL_BROKERS.
KAFKA_RUN=${KAFKA_RUN:-/tmp/msk-consumer-kafka}
if [ "${KAFKA_ENV_NO_STATE:-0}" != 1 ] && [ -f "$KAFKA_RUN/cluster.env" ]; then
  while IFS='=' read -r _k _v; do
    case $_k in
      KAFKA_VERSION|KAFKA_NODES|KAFKA_PLAINTEXT_PORT|KAFKA_SASL_PORT|KAFKA_CONTROLLER_PORT|KAFKA_PORT_STEP)
        eval "[ -n \"\${$_k:-}\" ] || $_k=\$_v" ;;
    esac
  done < "$KAFKA_RUN/cluster.env"
  unset _k _v
fi
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_MAJOR=${KAFKA_VERSION%%.*}
KAFKA_NODES=${KAFKA_NODES:-1}
KAFKA_HOME_DIR=${KAFKA_HOME_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/msk-consumer/kafka}
KAFKA_LIBS=$KAFKA_HOME_DIR/$KAFKA_VERSION/libs
KAFKA_PLAINTEXT_PORT=${KAFKA_PLAINTEXT_PORT:-19092}
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-19093}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19094}
KAFKA_PORT_STEP=${KAFKA_PORT_STEP:-10}

KAFKA_BROKERS=
KAFKA_SASL_BROKERS=
_n=1
while [ "$_n" -le "$KAFKA_NODES" ]; do
  KAFKA_BROKERS=${KAFKA_BROKERS:+$KAFKA_BROKERS,}127.0.0.1:$((KAFKA_PLAINTEXT_PORT + (_n - 1) * KAFKA_PORT_STEP))
  KAFKA_SASL_BROKERS=${KAFKA_SASL_BROKERS:+$KAFKA_SASL_BROKERS,}127.0.0.1:$((KAFKA_SASL_PORT + (_n - 1) * KAFKA_PORT_STEP))
  _n=$((_n + 1))
done
unset _n
export KAFKA_RUN KAFKA_VERSION KAFKA_MAJOR KAFKA_NODES KAFKA_HOME_DIR KAFKA_LIBS \
  KAFKA_PLAINTEXT_PORT KAFKA_SASL_PORT KAFKA_CONTROLLER_PORT KAFKA_PORT_STEP \
  KAFKA_BROKERS KAFKA_SASL_BROKERS
