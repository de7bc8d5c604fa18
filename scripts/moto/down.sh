#!/usr/bin/env bash
# Stops the moto server started by up.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
[ -f "$MOTO_RUN/pid" ] || { echo "moto not running"; exit 0; }
pid=$(cat "$MOTO_RUN/pid")
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
fi
rm -rf "$MOTO_RUN"
echo "moto stopped"
