# Shared settings of the Redis test scripts. Source it.
REDIS_RUN=${REDIS_RUN:-/tmp/msk-consumer-redis}
REDIS_PORT=${REDIS_PORT:-16379}
# A user with a password besides the default one, so that the tests cover
# REDIS_URL's userinfo (ACL AUTH, as ElastiCache's RBAC uses).
REDIS_TEST_USER=${REDIS_TEST_USER:-msk}
REDIS_TEST_PASSWORD=${REDIS_TEST_PASSWORD:-msk-test-secret}
