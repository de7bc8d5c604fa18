#!/usr/bin/env bash
# Starts a single-node KRaft Apache Kafka (broker and controller) on
# 127.0.0.1: PLAINTEXT on $KAFKA_PLAINTEXT_PORT and SASL_PLAINTEXT with
# OAUTHBEARER (Kafka's built-in unsecured JWT validator) on
# $KAFKA_SASL_PORT. Waits for "Kafka Server started".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
"$here/fetch.sh"

if [ -f "$KAFKA_RUN/pid" ] && kill -0 "$(cat "$KAFKA_RUN/pid")" 2>/dev/null; then
  echo "kafka already running (pid $(cat "$KAFKA_RUN/pid"))"
  exit 0
fi
# KAFKA_KEEP_DATA=1 restarts on the existing log dir (a broker restart),
# otherwise the broker starts empty.
keep=${KAFKA_KEEP_DATA:-0}
if [ "$keep" = 1 ] && [ -f "$KAFKA_RUN/server.properties" ]; then
  : > "$KAFKA_RUN/server.log"
else
  keep=0
  rm -rf "$KAFKA_RUN"
  mkdir -p "$KAFKA_RUN/data"
fi

[ "$keep" = 1 ] || cat > "$KAFKA_RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PLAINTEXT_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PLAINTEXT_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=OAUTHBEARER
listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
# Short SASL sessions, so that the tests see clients re-authenticate (KIP-368)
# the way MSK makes them.
listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms=3000
log.dirs=$KAFKA_RUN/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
PROPS

[ "$keep" = 1 ] || cat > "$KAFKA_RUN/log4j2.properties" <<'PROPS'
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = WARN
PROPS

java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC
  -Dkafka.logs.dir="$KAFKA_RUN"
  -Dlog4j2.configurationFile="$KAFKA_RUN/log4j2.properties")
cp="$KAFKA_LIBS/*"

if [ "$keep" = 0 ]; then
cluster_id=$(java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
java -cp "$cp" "${java_opts[@]}" kafka.tools.StorageTool format \
  -t "$cluster_id" -c "$KAFKA_RUN/server.properties" > "$KAFKA_RUN/format.log" 2>&1 || {
  cat "$KAFKA_RUN/format.log"; exit 1; }
fi

nohup java -cp "$cp" "${java_opts[@]}" kafka.Kafka "$KAFKA_RUN/server.properties" \
  > "$KAFKA_RUN/stdout.log" 2>&1 &
echo $! > "$KAFKA_RUN/pid"

for _ in $(seq 1 120); do
  if grep -q "Kafka Server started" "$KAFKA_RUN/server.log" 2>/dev/null; then
    echo "kafka started: PLAINTEXT 127.0.0.1:$KAFKA_PLAINTEXT_PORT, SASL_PLAINTEXT/OAUTHBEARER 127.0.0.1:$KAFKA_SASL_PORT (pid $(cat "$KAFKA_RUN/pid"))"
    exit 0
  fi
  if ! kill -0 "$(cat "$KAFKA_RUN/pid")" 2>/dev/null; then
    echo "kafka exited during start:"; tail -n 50 "$KAFKA_RUN/stdout.log" "$KAFKA_RUN/server.log" 2>/dev/null; exit 1
  fi
  sleep 0.5
done
echo "kafka did not start within 60s:"; tail -n 50 "$KAFKA_RUN/server.log"; exit 1
