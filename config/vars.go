package config

import (
	"net/url"
	"strings"
)

// The environment variables, named once here so that Load, Validate and
// Print cannot drift apart.
const (
	envKafkaBrokers          = "KAFKA_BROKERS"
	envKafkaTopics           = "KAFKA_TOPICS"
	envKafkaGroupID          = "KAFKA_GROUP_ID"
	envKafkaAuth             = "KAFKA_AUTH"
	envKafkaTLS              = "KAFKA_TLS"
	envKafkaTLSCAFile        = "KAFKA_TLS_CA_FILE"
	envKafkaTLSCertFile      = "KAFKA_TLS_CERT_FILE"
	envKafkaTLSKeyFile       = "KAFKA_TLS_KEY_FILE"
	envKafkaTLSServerName    = "KAFKA_TLS_SERVER_NAME"
	envKafkaTLSInsecure      = "KAFKA_TLS_INSECURE_SKIP_VERIFY"
	envKafkaSASLUsername     = "KAFKA_SASL_USERNAME"
	envKafkaSASLPassword     = "KAFKA_SASL_PASSWORD"
	envAWSRegion             = "AWS_REGION"
	envAWSDefaultRegion      = "AWS_DEFAULT_REGION"
	envKafkaIAMRoleARN       = "KAFKA_IAM_ROLE_ARN"
	envKafkaIAMSessionName   = "KAFKA_IAM_SESSION_NAME"
	envKafkaClientID         = "KAFKA_CLIENT_ID"
	envKafkaStartOffset      = "KAFKA_START_OFFSET"
	envKafkaSessionTimeout   = "KAFKA_SESSION_TIMEOUT"
	envKafkaHeartbeat        = "KAFKA_HEARTBEAT_INTERVAL"
	envKafkaRebalanceTimeout = "KAFKA_REBALANCE_TIMEOUT"
	envKafkaInstanceID       = "KAFKA_INSTANCE_ID"
	envKafkaCommitInterval   = "KAFKA_COMMIT_INTERVAL"
	envStartupTimeout        = "STARTUP_TIMEOUT"

	envBatchMaxRecords     = "BATCH_MAX_RECORDS"
	envBatchMaxBytes       = "BATCH_MAX_BYTES"
	envBatchMaxWait        = "BATCH_MAX_WAIT"
	envMaxInFlightBatches  = "MAX_IN_FLIGHT_BATCHES"
	envMaxBufferedBytes    = "MAX_BUFFERED_BYTES"
	envHandlerMaxAttempts  = "HANDLER_MAX_ATTEMPTS"
	envHandlerRetryBackoff = "HANDLER_RETRY_BACKOFF"
	envHandlerBackoffMax   = "HANDLER_RETRY_BACKOFF_MAX"
	envHandlerMaxRecordAge = "HANDLER_MAX_RECORD_AGE"
	envShutdownTimeout     = "SHUTDOWN_TIMEOUT"

	envValueFormat         = "VALUE_FORMAT"
	envKeyFormat           = "KEY_FORMAT"
	envValueSchemaFile     = "VALUE_SCHEMA_FILE"
	envKeySchemaFile       = "KEY_SCHEMA_FILE"
	envValueProtoMessage   = "VALUE_PROTO_MESSAGE"
	envKeyProtoMessage     = "KEY_PROTO_MESSAGE"
	envValueSchemaRegistry = "VALUE_SCHEMA_REGISTRY"
	envKeySchemaRegistry   = "KEY_SCHEMA_REGISTRY"
	envSchemaRegistryURL   = "SCHEMA_REGISTRY_URL"
	envSchemaRegistryUser  = "SCHEMA_REGISTRY_USERNAME"
	envSchemaRegistryPass  = "SCHEMA_REGISTRY_PASSWORD"

	envHandler            = "HANDLER"
	envHTTPHandlerURL     = "HTTP_HANDLER_URL"
	envHTTPHandlerTimeout = "HTTP_HANDLER_TIMEOUT"
	envHTTPHandlerAuth    = "HTTP_HANDLER_AUTH_HEADER"

	envDLQTopic = "DLQ_TOPIC"

	envMetricsAddr  = "METRICS_ADDR"
	envLogLevel     = "LOG_LEVEL"
	envLogFormat    = "LOG_FORMAT"
	envUnreadyAfter = "UNREADY_AFTER"
)

// varOrder is the contract's table order, with the two extensions at the end
// of their sections. Problems are sorted by it and Print follows it.
// AWS_DEFAULT_REGION is only read as a fallback and reported as AWS_REGION.
var varOrder = []string{
	envKafkaBrokers, envKafkaTopics, envKafkaGroupID, envKafkaAuth,
	envKafkaTLS, envKafkaTLSCAFile, envKafkaTLSCertFile, envKafkaTLSKeyFile,
	envKafkaTLSServerName, envKafkaTLSInsecure,
	envKafkaSASLUsername, envKafkaSASLPassword,
	envAWSRegion, envKafkaIAMRoleARN, envKafkaIAMSessionName,
	envKafkaClientID, envKafkaStartOffset, envKafkaSessionTimeout,
	envKafkaHeartbeat, envKafkaRebalanceTimeout, envKafkaInstanceID,
	envStartupTimeout, envKafkaCommitInterval,

	envBatchMaxRecords, envBatchMaxBytes, envBatchMaxWait,
	envMaxInFlightBatches, envMaxBufferedBytes, envHandlerMaxAttempts,
	envHandlerRetryBackoff, envHandlerBackoffMax, envHandlerMaxRecordAge,
	envShutdownTimeout,

	envValueFormat, envKeyFormat, envValueSchemaFile, envKeySchemaFile,
	envValueProtoMessage, envKeyProtoMessage,
	envValueSchemaRegistry, envKeySchemaRegistry,
	envSchemaRegistryURL, envSchemaRegistryUser, envSchemaRegistryPass,

	envHandler, envHTTPHandlerURL, envHTTPHandlerTimeout, envHTTPHandlerAuth,

	envDLQTopic,

	envMetricsAddr, envLogLevel, envLogFormat, envUnreadyAfter,
}

// varIndex is a variable's position in varOrder; unknown names sort last.
func varIndex(name string) int {
	for i, v := range varOrder {
		if v == name {
			return i
		}
	}
	return len(varOrder)
}

// isSecret reports whether a variable's value must never be printed.
func isSecret(name string) bool {
	switch name {
	case envKafkaSASLPassword, envSchemaRegistryPass, envHTTPHandlerAuth:
		return true
	}
	return false
}

// isURLVar reports whether a variable holds a URL whose secrets (a userinfo
// password, query values, a fragment) must be redacted wherever the value
// is shown. It goes by the name, so that a URL variable added later (such as
// the contract's REDIS_URL) is covered without a change here.
func isURLVar(name string) bool {
	return strings.HasSuffix(name, "_URL")
}

// RedactURL hides what in a URL may be a credential: the password in its
// userinfo (as url.URL.Redacted does), every query value, since APIs take
// tokens as ?token=... or ?sig=..., and the fragment. Query keys are kept,
// in their order, so that an operator can still tell which URL it is; a
// query element without '=' is hidden whole, since it may be a bare token.
// A value that does not parse is hidden entirely, since we cannot tell where
// a secret would be.
func RedactURL(raw string) string {
	if raw == "" || raw == redacted {
		// Problems are redacted when made and again when rendered, so
		// redacting must be idempotent: "<redacted>" would parse as a path.
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			if key, _, ok := strings.Cut(part, "="); ok {
				parts[i] = key + "=" + redactedValue
			} else if part != "" {
				parts[i] = redactedValue
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redactedValue, ""
	}
	return u.Redacted()
}

// redactedValue stands in for a query value or a fragment in a URL. It is
// a plain word, not redacted, so that the printed URL stays a URL.
const redactedValue = "REDACTED"

// redacted stands in for the value of a secret that is set.
const redacted = "<redacted>"
