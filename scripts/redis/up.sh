#!/usr/bin/env bash
# Starts a throwaway Redis (Debian's redis-server, or valkey-server) on
# 127.0.0.1:$REDIS_PORT for the idempotency store's tests and `make chaos
# CHAOS_FLAGS=-store=redis`: no persistence, the default user plus an ACL
# user with a password. Installs the server with apt-get when neither is
# on the PATH (the CI machine runs as root). Prints the REDIS_TEST_URL.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

server=$(command -v redis-server || command -v valkey-server || true)
if [ -z "$server" ]; then
  echo "installing redis-server from Debian's packages"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  server=$(command -v redis-server)
fi
cli=$(command -v redis-cli || command -v valkey-cli || true)

if [ -f "$REDIS_RUN/pid" ] && kill -0 "$(cat "$REDIS_RUN/pid")" 2>/dev/null; then
  echo "redis already running (pid $(cat "$REDIS_RUN/pid")): REDIS_TEST_URL=redis://127.0.0.1:$REDIS_PORT/0"
  exit 0
fi
rm -rf "$REDIS_RUN"
mkdir -p "$REDIS_RUN"
"$server" --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
  --save '' --appendonly no --dir "$REDIS_RUN" \
  --daemonize yes --pidfile "$REDIS_RUN/pid" --logfile "$REDIS_RUN/server.log" \
  --user "$REDIS_TEST_USER" on ">$REDIS_TEST_PASSWORD" '~*' '&*' '+@all'

for _ in $(seq 1 100); do
  if [ -n "$cli" ] && "$cli" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    break
  elif [ -z "$cli" ] && (exec 3<>/dev/tcp/127.0.0.1/"$REDIS_PORT") 2>/dev/null; then
    break
  fi
  sleep 0.1
done
[ -f "$REDIS_RUN/pid" ] || { echo "redis did not start:"; cat "$REDIS_RUN/server.log"; exit 1; }
echo "redis started: $("$server" --version | cut -d' ' -f1-3) on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_RUN/pid")): REDIS_TEST_URL=redis://127.0.0.1:$REDIS_PORT/0"
