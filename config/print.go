package config

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// Print writes the effective configuration as NAME=value lines in the
// contract's order, defaults included, for `consumer config`.
//
// Secrets print as <redacted> when set and empty when unset; in
// HTTP_HANDLER_URL and SCHEMA_REGISTRY_URL a userinfo password, every query
// value and the fragment are redacted too. AWS_REGION is the effective
// region, whichever variable it came from. Durations use Go syntax;
// HANDLER_MAX_RECORD_AGE prints empty when there is no limit. When DLQ_TOPIC
// is unset its line lists each topic's default dead-letter topic and says so
// in a trailing comment.
func (c Config) Print(w io.Writer) error {
	var b strings.Builder
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	secret := func(name, value string) {
		if value != "" {
			value = redacted
		}
		line(name, value)
	}
	dur := func(name string, d time.Duration) { line(name, d.String()) }
	num := func(name string, n int64) { line(name, strconv.FormatInt(n, 10)) }
	flag := func(name string, v bool) { line(name, strconv.FormatBool(v)) }

	k := c.Kafka
	line(envKafkaBrokers, strings.Join(k.Brokers, ","))
	line(envKafkaTopics, strings.Join(k.Topics, ","))
	line(envKafkaGroupID, k.GroupID)
	line(envKafkaAuth, string(k.Auth))
	flag(envKafkaTLS, k.TLS)
	line(envKafkaTLSCAFile, k.TLSCAFile)
	line(envKafkaTLSCertFile, k.TLSCertFile)
	line(envKafkaTLSKeyFile, k.TLSKeyFile)
	line(envKafkaTLSServerName, k.TLSServerName)
	flag(envKafkaTLSInsecure, k.TLSInsecureSkipVerify)
	line(envKafkaSASLUsername, k.SASLUsername)
	secret(envKafkaSASLPassword, k.SASLPassword)
	line(envAWSRegion, k.AWSRegion)
	line(envKafkaIAMRoleARN, k.IAMRoleARN)
	line(envKafkaIAMSessionName, k.IAMSessionName)
	line(envKafkaClientID, k.ClientID)
	line(envKafkaStartOffset, string(k.StartOffset))
	dur(envKafkaSessionTimeout, k.SessionTimeout)
	dur(envKafkaHeartbeat, k.HeartbeatInterval)
	dur(envKafkaRebalanceTimeout, k.RebalanceTimeout)
	line(envKafkaInstanceID, k.InstanceID)
	dur(envStartupTimeout, k.StartupTimeout)
	dur(envKafkaCommitInterval, k.CommitInterval)

	bt := c.Batch
	num(envBatchMaxRecords, int64(bt.MaxRecords))
	num(envBatchMaxBytes, int64(bt.MaxBytes))
	dur(envBatchMaxWait, bt.MaxWait)
	num(envMaxInFlightBatches, int64(bt.MaxInFlight))
	num(envMaxBufferedBytes, bt.MaxBufferedBytes)
	num(envHandlerMaxAttempts, int64(bt.HandlerMaxAttempts))
	dur(envHandlerRetryBackoff, bt.HandlerRetryBackoff)
	dur(envHandlerBackoffMax, bt.HandlerBackoffMax)
	if bt.HandlerMaxRecordAge > 0 {
		dur(envHandlerMaxRecordAge, bt.HandlerMaxRecordAge)
	} else {
		// Empty, as it was read: "0s" would not load back.
		line(envHandlerMaxRecordAge, "")
	}
	dur(envShutdownTimeout, bt.ShutdownTimeout)

	line(envValueFormat, string(c.Value.Format))
	line(envKeyFormat, string(c.Key.Format))
	line(envValueSchemaFile, c.Value.SchemaFile)
	line(envKeySchemaFile, c.Key.SchemaFile)
	line(envValueProtoMessage, c.Value.ProtoMessage)
	line(envKeyProtoMessage, c.Key.ProtoMessage)
	line(envValueSchemaRegistry, string(c.Value.Registry))
	line(envKeySchemaRegistry, string(c.Key.Registry))
	line(envSchemaRegistryURL, RedactURL(c.Registry.URL))
	line(envSchemaRegistryUser, c.Registry.Username)
	secret(envSchemaRegistryPass, c.Registry.Password)

	line(envHandler, c.Handler.Name)
	line(envHTTPHandlerURL, RedactURL(c.Handler.HTTPURL))
	dur(envHTTPHandlerTimeout, c.Handler.HTTPTimeout)
	secret(envHTTPHandlerAuth, c.Handler.HTTPAuth)

	if c.DLQ.Topic != "" || len(k.Topics) == 0 {
		line(envDLQTopic, c.DLQ.Topic)
	} else {
		dlqs := make([]string, len(k.Topics))
		for i, t := range k.Topics {
			dlqs[i] = c.DLQ.TopicFor(t)
		}
		line(envDLQTopic, strings.Join(dlqs, ",")+"  # unset: each topic dead-letters to <topic>"+DefaultDLQSuffix)
	}

	line(envMetricsAddr, c.Ops.MetricsAddr)
	line(envLogLevel, c.Ops.LogLevel)
	line(envLogFormat, string(c.Ops.LogFormat))
	dur(envUnreadyAfter, c.Ops.UnreadyAfter)

	_, err := io.WriteString(w, b.String())
	return err
}
