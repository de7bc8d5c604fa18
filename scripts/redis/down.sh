#!/usr/bin/env bash
# Stops the Redis started by up.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/../stop.sh"
stop_run redis "$REDIS_RUN"
