#!/usr/bin/env bash
# Fetches the Apache Kafka broker's jars from Maven Central into the cache
# (once; later runs reuse them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
stamp=$KAFKA_LIBS/.complete-$(sha256sum "$here/pom.xml" | cut -c1-12)
if [ -f "$stamp" ]; then
  exit 0
fi
mkdir -p "$KAFKA_LIBS"
echo "fetching the Kafka broker jars into $KAFKA_LIBS"
mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime
touch "$stamp"
