#!/usr/bin/env bash
# Stops the moto server started by up.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/../stop.sh"
stop_run moto "$MOTO_RUN"
