#!/usr/bin/env bash
# Stops the broker started by up.sh (SIGTERM, then SIGKILL after 30s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
[ -f "$KAFKA_RUN/pid" ] || { echo "kafka not running"; exit 0; }
pid=$(cat "$KAFKA_RUN/pid")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { echo "kafka did not stop; killing"; kill -9 "$pid"; }
fi
rm -f "$KAFKA_RUN/pid"
echo "kafka stopped"
