#!/usr/bin/env bash
# Fetches the jars of Apache Kafka $KAFKA_VERSION's broker from Maven Central
# into their own cache directory, $KAFKA_HOME_DIR/<version>/libs (once; later
# runs reuse them). A new fetch (another pom.xml) replaces the directory
# whole, so that no two resolutions' jars mix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
case $KAFKA_MAJOR in
  3|4) ;;
  *) echo "KAFKA_VERSION=$KAFKA_VERSION: only 3.9.x and 4.x are supported" >&2; exit 2 ;;
esac
stamp=$KAFKA_LIBS/.complete-$(sha256sum "$here/pom.xml" | cut -c1-12)
if [ -f "$stamp" ]; then
  exit 0
fi
tmp=$KAFKA_LIBS.tmp.$$
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
mkdir -p "$tmp"
echo "fetching the Kafka $KAFKA_VERSION broker jars into $KAFKA_LIBS"
mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
  -Dkafka.version="$KAFKA_VERSION" -Dkafka.major="$KAFKA_MAJOR" \
  -DoutputDirectory="$tmp" -DincludeScope=runtime
[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || {
  echo "kafka_2.13-$KAFKA_VERSION.jar missing after the fetch" >&2; exit 1; }
rm -rf "$KAFKA_LIBS"
mv "$tmp" "$KAFKA_LIBS"
touch "$stamp"
