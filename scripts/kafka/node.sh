#!/usr/bin/env bash
# One node of the cluster up.sh started, for failure tests:
#
#   scripts/kafka/node.sh stop <n>     SIGTERM (controlled shutdown), waits
#   scripts/kafka/node.sh kill <n>     SIGKILL (a crash), waits until it is gone
#   scripts/kafka/node.sh start <n>    restarts it on its log dir, waits until
#                                      it has caught up and is unfenced
#   scripts/kafka/node.sh pause <n>    SIGSTOP (a hung broker: connections
#                                      stay open, nothing answers)
#   scripts/kafka/node.sh resume <n>   SIGCONT
#   scripts/kafka/node.sh status       every node: running, paused or stopped
#   scripts/kafka/node.sh pid <n>      its pid
#
# n is a broker, 1..KAFKA_NODES; 0 is the dedicated controller of a cluster
# of several (killing it stops all metadata changes: leader elections too).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/lib.sh"
usage() { echo "usage: $0 stop|kill|start|pause|resume|pid <n> | status" >&2; exit 2; }
[ $# -ge 1 ] || usage
cmd=$1
[ -f "$KAFKA_RUN/cluster.env" ] || { echo "no cluster in $KAFKA_RUN: scripts/kafka/up.sh starts one" >&2; exit 1; }

state() {
  local pid
  if ! node_running "$1"; then echo stopped; return; fi
  pid=$(node_pid "$1")
  case $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) in
    T|t) echo paused ;;
    *) echo running ;;
  esac
}

if [ "$cmd" = status ]; then
  for n in $(node_ids | sort -n); do
    printf '%s\t%s\t%s\n' "$n" "$(node_name "$n")" "$(state "$n")"
  done
  exit 0
fi
[ $# = 2 ] || usage
n=$2
valid=0
for m in $(node_ids); do [ "$m" = "$n" ] && valid=1; done
[ "$valid" = 1 ] || { echo "no node $n: the nodes are $(node_ids | sort -n | tr '\n' ' ')" >&2; exit 2; }
dir=$(node_dir "$n")
name=$(node_name "$n")

case $cmd in
  pid)
    node_running "$n" || { echo "$name is not running" >&2; exit 1; }
    node_pid "$n" ;;
  stop)
    node_running "$n" || { echo "$name is not running"; exit 0; }
    stop_pidfiles "$dir/pid"
    echo "$name stopped" ;;
  kill)
    node_running "$n" || { echo "$name is not running"; exit 0; }
    pid=$(node_pid "$n")
    kill -9 "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/pid"
    echo "$name killed" ;;
  start)
    if node_running "$n"; then echo "$name already running (pid $(node_pid "$n"))"; exit 0; fi
    launch_node "$n"
    wait_node "$n" 120
    echo "$name started (pid $(node_pid "$n"))" ;;
  pause)
    node_running "$n" || { echo "$name is not running" >&2; exit 1; }
    kill -STOP "$(node_pid "$n")"
    echo "$name paused" ;;
  resume)
    node_running "$n" || { echo "$name is not running" >&2; exit 1; }
    kill -CONT "$(node_pid "$n")"
    echo "$name resumed" ;;
  *) usage ;;
esac
