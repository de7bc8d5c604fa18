#!/usr/bin/env bash
# Starts moto's server mode (PyPI moto[server], pinned; installed on first
# use into a venv under ~/.cache/msk-consumer/moto) on 127.0.0.1:$MOTO_PORT,
# the DynamoDB emulator the idempotency store is tested against (DynamoDB
# Local's licence rules it out here), serving one request at a time
# (serve.py). Prints DYNAMODB_TEST_ENDPOINT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "installing moto[server]==$MOTO_VERSION into $MOTO_VENV"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

if [ -f "$MOTO_RUN/pid" ] && kill -0 "$(cat "$MOTO_RUN/pid")" 2>/dev/null; then
  echo "moto already running (pid $(cat "$MOTO_RUN/pid")): DYNAMODB_TEST_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
  exit 0
fi
rm -rf "$MOTO_RUN"
mkdir -p "$MOTO_RUN"
# serve.py: moto's server with requests applied one at a time, as DynamoDB
# applies conditional writes to an item (moto_server's threads do not).
nohup "$MOTO_VENV/bin/python" "$here/serve.py" 127.0.0.1 "$MOTO_PORT" > "$MOTO_RUN/server.log" 2>&1 &
echo $! > "$MOTO_RUN/pid"
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$MOTO_PORT") 2>/dev/null; then
    echo "moto $MOTO_VERSION started on 127.0.0.1:$MOTO_PORT (pid $(cat "$MOTO_RUN/pid")): DYNAMODB_TEST_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
    exit 0
  fi
  if ! kill -0 "$(cat "$MOTO_RUN/pid")" 2>/dev/null; then
    echo "moto exited during start:"; cat "$MOTO_RUN/server.log"; exit 1
  fi
  sleep 0.1
done
echo "moto did not start within 10s:"; cat "$MOTO_RUN/server.log"; exit 1
