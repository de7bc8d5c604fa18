#!/usr/bin/env bash
# Stops the Redis started by up.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
[ -f "$REDIS_RUN/pid" ] || { echo "redis not running"; exit 0; }
pid=$(cat "$REDIS_RUN/pid")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
fi
rm -rf "$REDIS_RUN"
echo "redis stopped"
