#!/usr/bin/env bash
# Runs the named top-level tests of one package, and fails when a name
# matches no test there: a tier that selects tests by name must not pass
# with "no tests to run" after a rename.
#
#   scripts/gotest-named.sh ./internal/consume/ 'TestA|TestB' [go test flags...]
set -euo pipefail
pkg=$1 names=$2
shift 2
GO=${GO:-go}
have=$($GO test -list '.*' "$pkg" | grep -E '^(Test|Fuzz|Example)' || true)
missing=()
IFS='|' read -ra want <<<"$names"
for n in "${want[@]}"; do
  grep -qxF "$n" <<<"$have" || missing+=("$n")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "gotest-named: no test in $pkg is named: ${missing[*]}" >&2
  exit 1
fi
exec $GO test -race -count=1 "$@" -run "^($names)\$" "$pkg"
