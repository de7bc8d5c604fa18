# Shared settings of the moto (DynamoDB emulator) scripts. Source it.
MOTO_VERSION=${MOTO_VERSION:-5.2.5}
MOTO_HOME=${MOTO_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/msk-consumer/moto}
MOTO_VENV=$MOTO_HOME/venv-$MOTO_VERSION
MOTO_RUN=${MOTO_RUN:-/tmp/msk-consumer-moto}
MOTO_PORT=${MOTO_PORT:-18000}
