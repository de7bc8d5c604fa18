# The nodes of the real-broker cluster: where each lives, its configuration,
# starting and stopping it. Sourced by up.sh, down.sh and node.sh after
# env.sh.
#
# One node (KAFKA_NODES=1): node 1, a combined broker and controller in
# $KAFKA_RUN itself. Several: node 0, a dedicated KRaft controller, and the
# brokers 1..KAFKA_NODES, each in $KAFKA_RUN/node<n>. A dedicated controller
# is what MSK runs: a broker that dies, stops or hangs never takes the quorum
# with it, and four small JVMs fit two cores.

node_dir() {
  if [ "$KAFKA_NODES" = 1 ]; then echo "$KAFKA_RUN"; else echo "$KAFKA_RUN/node$1"; fi
}

# The nodes that exist in this mode, brokers first, the controller last.
node_ids() {
  local n
  for ((n = 1; n <= KAFKA_NODES; n++)); do echo "$n"; done
  [ "$KAFKA_NODES" = 1 ] || echo 0
}

node_pid() {
  local f
  f=$(node_dir "$1")/pid
  [ -f "$f" ] && cat "$f"
}

node_running() {
  local pid
  pid=$(node_pid "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

plaintext_port() { echo $((KAFKA_PLAINTEXT_PORT + ($1 - 1) * KAFKA_PORT_STEP)); }
sasl_port() { echo $((KAFKA_SASL_PORT + ($1 - 1) * KAFKA_PORT_STEP)); }

node_name() {
  if [ "$1" = 0 ]; then echo "controller (node 0)"
  elif [ "$KAFKA_NODES" = 1 ]; then echo "kafka"
  else echo "broker $1"; fi
}

# The settings MSK gives a cluster of three brokers or more. In KRaft the
# controller creates the topics and elects the leaders, so the topic defaults
# are its settings (Kafka 4.4 warns when a broker sets them);
# min.insync.replicas is both sides' (the brokers check it on acks=all
# writes, the controller uses it for eligible leader replicas, KIP-966).
controller_defaults() {
  local rf=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
  local isr=$((rf < 3 ? 1 : 2))
  cat <<PROPS
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
unclean.leader.election.enable=false
PROPS
}

# The brokers create the internal topics, with their own settings.
broker_defaults() {
  local rf=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
  local isr=$((rf < 3 ? 1 : 2))
  cat <<PROPS
min.insync.replicas=$isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
PROPS
}

# The broker side: listeners, SASL/OAUTHBEARER (Kafka's built-in unsecured
# JWT validator) and the group settings the tests need.
broker_props() {
  local n=$1 p s
  p=$(plaintext_port "$n")
  s=$(sasl_port "$n")
  cat <<PROPS
advertised.listeners=PLAINTEXT://127.0.0.1:$p,SASL_PLAINTEXT://127.0.0.1:$s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=OAUTHBEARER
listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";
# Short SASL sessions, so that the tests see clients re-authenticate (KIP-368)
# the way MSK makes them.
listener.name.sasl_plaintext.oauthbearer.connections.max.reauth.ms=3000
log.dirs=$(node_dir "$n")/data
offsets.topic.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# KIP-848 groups (KAFKA_GROUP_PROTOCOL=consumer): the broker sets their
# session timeout and heartbeat interval; short ones, as the tests' classic
# members ask for theirs (the defaults are 45s and 5s).
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms=10000
group.consumer.min.heartbeat.interval.ms=100
group.consumer.heartbeat.interval.ms=500
auto.create.topics.enable=false
PROPS
  share_props
}

# share_props: the share group settings (KIP-932, Kafka 4.2+) the tests
# need, nothing before 4.2. The share coordinator's state topic with the
# cluster's replication (its default of 3 cannot be created on one node);
# the smallest acquisition lock a group may set down to 1s (15s by
# default), so that the tests set share.record.lock.duration.ms 1000 on
# their groups and see locks expire within a test; short sessions and
# heartbeats, as for KIP-848 groups (45s and 5s by default).
share_props() {
  share_enabled || return 0
  local rf=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
  local isr=$((rf < 3 ? 1 : 2))
  cat <<PROPS
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
share.coordinator.state.topic.num.partitions=4
group.share.min.record.lock.duration.ms=1000
group.share.min.session.timeout.ms=1000
group.share.session.timeout.ms=10000
group.share.min.heartbeat.interval.ms=100
group.share.heartbeat.interval.ms=500
PROPS
}

# share_enabled: whether KAFKA_VERSION serves share groups (4.2+).
share_enabled() {
  local minor=${KAFKA_VERSION#*.}
  minor=${minor%%.*}
  [ "$KAFKA_MAJOR" -gt 4 ] || { [ "$KAFKA_MAJOR" = 4 ] && [ "$minor" -ge 2 ]; }
}

write_props() {
  local n=$1 dir p s
  dir=$(node_dir "$n")
  mkdir -p "$dir/data"
  if [ "$KAFKA_NODES" = 1 ]; then
    # Unchanged from the single-node days: same ports, same settings.
    p=$(plaintext_port 1)
    s=$(sasl_port 1)
    {
      echo "process.roles=broker,controller"
      echo "node.id=1"
      echo "controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT"
      echo "listeners=PLAINTEXT://127.0.0.1:$p,SASL_PLAINTEXT://127.0.0.1:$s,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
      broker_props 1
      echo "num.partitions=1"
      echo "offsets.topic.replication.factor=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
    } > "$dir/server.properties"
  elif [ "$n" = 0 ]; then
    {
      echo "process.roles=controller"
      echo "node.id=0"
      echo "controller.quorum.voters=0@127.0.0.1:$KAFKA_CONTROLLER_PORT"
      echo "listeners=CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
      echo "controller.listener.names=CONTROLLER"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT"
      echo "log.dirs=$dir/data"
      controller_defaults
      # The controller validates a group's configs against these bounds.
      share_props
    } > "$dir/server.properties"
  else
    p=$(plaintext_port "$n")
    s=$(sasl_port "$n")
    {
      echo "process.roles=broker"
      echo "node.id=$n"
      echo "controller.quorum.voters=0@127.0.0.1:$KAFKA_CONTROLLER_PORT"
      echo "listeners=PLAINTEXT://127.0.0.1:$p,SASL_PLAINTEXT://127.0.0.1:$s"
      broker_props "$n"
      broker_defaults
    } > "$dir/server.properties"
  fi
  write_log_config "$dir"
}

# Kafka 4 logs through log4j2, Kafka 3 through log4j 1.x (reload4j).
write_log_config() {
  local dir=$1
  if [ "$KAFKA_MAJOR" = 3 ]; then
    cat > "$dir/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
PROPS
  else
    cat > "$dir/log4j2.properties" <<'PROPS'
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
  fi
}

# The JVM options of node n (into the array java_opts). One node keeps the
# heap it always had; in a cluster each JVM is small, and only C1 compiles
# (-XX:TieredStopAtLevel=1): four JVMs warming up with C2 on two cores start
# slowly, and the tests' loads never need C2's code. KAFKA_JVM_OPTS adds
# options to every node.
node_java_opts() {
  local n=$1 dir
  dir=$(node_dir "$n")
  if [ "$KAFKA_NODES" = 1 ]; then
    java_opts=(-Xms256m -Xmx1g -XX:+UseG1GC)
  elif [ "$n" = 0 ]; then
    java_opts=(-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)
  else
    java_opts=(-Xms128m -Xmx512m -XX:+UseG1GC -XX:TieredStopAtLevel=1)
  fi
  java_opts+=(-Dkafka.logs.dir="$dir")
  if [ "$KAFKA_MAJOR" = 3 ]; then
    java_opts+=(-Dlog4j.configuration="file:$dir/log4j.properties")
  else
    java_opts+=(-Dlog4j2.configurationFile="$dir/log4j2.properties")
  fi
  # shellcheck disable=SC2206
  [ -z "${KAFKA_JVM_OPTS:-}" ] || java_opts+=($KAFKA_JVM_OPTS)
}

# share_features: the format options that enable share groups (KIP-932,
# KAFKA_GROUP_TYPE=share) on Kafka 4.2+, where they are production-ready:
# the share.version feature at level 1, stated rather than left to the
# release's default. Before 4.2 (a preview in 4.1, unknown to 3.x) nothing.
share_features() {
  if share_enabled; then
    echo "--feature share.version=1"
  fi
}

# format_node n cluster_id: a fresh log dir for node n.
format_node() {
  local n=$1 id=$2 dir java_opts
  dir=$(node_dir "$n")
  node_java_opts "$n"
  # shellcheck disable=SC2046 # share_features is zero or two words
  java -cp "$KAFKA_LIBS/*" "${java_opts[@]}" -XX:TieredStopAtLevel=1 kafka.tools.StorageTool format \
    -t "$id" -c "$dir/server.properties" $(share_features) > "$dir/format.log" 2>&1 || {
    echo "formatting $(node_name "$n") failed:"; cat "$dir/format.log"; return 1; }
}

random_cluster_id() {
  java -cp "$KAFKA_LIBS/*" -XX:TieredStopAtLevel=1 kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1
}

# launch_node n: starts node n on its existing log dir, in the background.
# Remembers where its log ends, so that wait_node reads only this start.
launch_node() {
  local n=$1 dir java_opts
  dir=$(node_dir "$n")
  node_java_opts "$n"
  wc -c < "$dir/server.log" > "$dir/log.offset" 2>/dev/null || echo 0 > "$dir/log.offset"
  nohup java -cp "$KAFKA_LIBS/*" "${java_opts[@]}" kafka.Kafka "$dir/server.properties" \
    >> "$dir/stdout.log" 2>&1 &
  echo $! > "$dir/pid"
}

# wait_node n seconds: until node n logs "Kafka Server started" (a broker
# logs it once it has caught up with the metadata and is unfenced).
wait_node() {
  local n=$1 secs=$2 dir off i
  dir=$(node_dir "$n")
  off=$(cat "$dir/log.offset" 2>/dev/null || echo 0)
  for ((i = 0; i < secs * 4; i++)); do
    if tail -c "+$((off + 1))" "$dir/server.log" 2>/dev/null | grep -q "Kafka Server started"; then
      return 0
    fi
    if ! node_running "$n"; then
      echo "$(node_name "$n") exited during start:"
      tail -n 50 "$dir/stdout.log" "$dir/server.log" 2>/dev/null
      return 1
    fi
    sleep 0.25
  done
  echo "$(node_name "$n") did not start within ${secs}s:"
  tail -n 50 "$dir/server.log"
  return 1
}

# stop_pidfiles file...: stops the processes named by these pid files
# together: SIGTERM (after SIGCONT, for a paused node), then SIGKILL for any
# still running after 30s. Removes the files.
stop_pidfiles() {
  local f pid pids=() i
  for f in "$@"; do
    pid=$(cat "$f" 2>/dev/null) || continue
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -CONT "$pid" 2>/dev/null || true
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 120 && ${#pids[@]} > 0; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    pids=("${alive[@]}")
    [ ${#pids[@]} = 0 ] || sleep 0.25
  done
  for pid in "${pids[@]}"; do
    echo "kafka (pid $pid) did not stop; killing"
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$@"
}
