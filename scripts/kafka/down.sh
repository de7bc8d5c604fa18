#!/usr/bin/env bash
# Stops every node started by up.sh in $KAFKA_RUN, of one node or several:
# the brokers together (SIGTERM, then SIGKILL after 30s), then the
# controller. Keeps the log dirs (KAFKA_KEEP_DATA=1 up.sh restarts on them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/lib.sh"
# Whatever KAFKA_NODES says, stop every node that has a pid file here.
brokers=()
ctrl=
[ -f "$KAFKA_RUN/pid" ] && brokers+=("$KAFKA_RUN/pid")
for f in "$KAFKA_RUN"/node*/pid; do
  [ -f "$f" ] || continue
  if [ "$f" = "$KAFKA_RUN/node0/pid" ]; then ctrl=$f; else brokers+=("$f"); fi
done
if [ ${#brokers[@]} = 0 ] && [ -z "$ctrl" ]; then
  echo "kafka not running"
  exit 0
fi
[ ${#brokers[@]} = 0 ] || stop_pidfiles "${brokers[@]}"
[ -z "$ctrl" ] || stop_pidfiles "$ctrl"
echo "kafka stopped"
