#!/usr/bin/env bash
# Installs what make test-browser needs: Debian's chromium, with apt-get
# (as root) when it is missing. Prints the browser's path.
set -euo pipefail
bin=${BROWSER_TEST_CHROMIUM:-chromium}
if ! command -v "$bin" >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "make test-browser needs $bin: apt-get install -y chromium (as root), or BROWSER_TEST_CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
  echo "installing chromium (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
command -v "$bin"
