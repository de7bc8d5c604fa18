package config

import "net/url"

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

	envBatchMaxRecords     = "BATCH_MAX_RECORDS"
	envBatchMaxBytes       = "BATCH_MAX_BYTES"
	envBatchMaxWait        = "BATCH_MAX_WAIT"
	envMaxInFlightBatches  = "MAX_IN_FLIGHT_BATCHES"
	envMaxBufferedBytes    = "MAX_BUFFERED_BYTES"
	envHandlerMaxAttempts  = "HANDLER_MAX_ATTEMPTS"
	envHandlerRetryBackoff = "HANDLER_RETRY_BACKOFF"
	envHandlerBackoffMax   = "HANDLER_RETRY_BACKOFF_MAX"
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
	envKafkaCommitInterval,

	envBatchMaxRecords, envBatchMaxBytes, envBatchMaxWait,
	envMaxInFlightBatches, envMaxBufferedBytes, envHandlerMaxAttempts,
	envHandlerRetryBackoff, envHandlerBackoffMax, envShutdownTimeout,

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

// isURLVar reports whether a variable holds a URL whose userinfo password
// must be redacted wherever the value is shown.
func isURLVar(name string) bool {
	return name == envHTTPHandlerURL || name == envSchemaRegistryURL
}

// redactURL hides the password in a URL's userinfo. A value that does not
// parse is hidden entirely, since we cannot tell where a password would be.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	return u.Redacted()
}

// redacted stands in for the value of a secret that is set.
const redacted = "<redacted>"
