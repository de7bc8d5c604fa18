package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(lookup(env()))
	if err != nil {
		t.Fatalf("Load: got error %v, want nil", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"KAFKA_BROKERS", c.Kafka.Brokers, []string{"b-1.msk.example.com:9098", "b-2.msk.example.com:9098"}},
		{"KAFKA_TOPICS", c.Kafka.Topics, []string{"products"}},
		{"KAFKA_GROUP_ID", c.Kafka.GroupID, "brands-sync-test"},
		{"KAFKA_AUTH", c.Kafka.Auth, AuthIAM},
		{"KAFKA_TLS", c.Kafka.TLS, true},
		{"TLSExplicit", c.Kafka.TLSExplicit, false},
		{"KAFKA_TLS_CA_FILE", c.Kafka.TLSCAFile, ""},
		{"KAFKA_TLS_CERT_FILE", c.Kafka.TLSCertFile, ""},
		{"KAFKA_TLS_KEY_FILE", c.Kafka.TLSKeyFile, ""},
		{"KAFKA_TLS_SERVER_NAME", c.Kafka.TLSServerName, ""},
		{"KAFKA_TLS_INSECURE_SKIP_VERIFY", c.Kafka.TLSInsecureSkipVerify, false},
		{"KAFKA_SASL_USERNAME", c.Kafka.SASLUsername, ""},
		{"KAFKA_SASL_PASSWORD", c.Kafka.SASLPassword, ""},
		{"AWS_REGION", c.Kafka.AWSRegion, "eu-west-1"},
		{"KAFKA_IAM_ROLE_ARN", c.Kafka.IAMRoleARN, ""},
		{"KAFKA_IAM_SESSION_NAME", c.Kafka.IAMSessionName, "msk-consumer"},
		{"KAFKA_CLIENT_ID", c.Kafka.ClientID, "msk-consumer"},
		{"KAFKA_START_OFFSET", c.Kafka.StartOffset, StartEarliest},
		{"KAFKA_SESSION_TIMEOUT", c.Kafka.SessionTimeout, 45 * time.Second},
		{"KAFKA_HEARTBEAT_INTERVAL", c.Kafka.HeartbeatInterval, 3 * time.Second},
		{"KAFKA_REBALANCE_TIMEOUT", c.Kafka.RebalanceTimeout, 60 * time.Second},
		{"KAFKA_INSTANCE_ID", c.Kafka.InstanceID, ""},
		{"KAFKA_GROUP_PROTOCOL", c.Kafka.GroupProtocol, GroupClassic},
		{"KAFKA_COMMIT_INTERVAL", c.Kafka.CommitInterval, 5 * time.Second},
		{"STARTUP_TIMEOUT", c.Kafka.StartupTimeout, 2 * time.Minute},
		{"BATCH_MAX_RECORDS", c.Batch.MaxRecords, 500},
		{"BATCH_MAX_BYTES", c.Batch.MaxBytes, 4194304},
		{"BATCH_MAX_WAIT", c.Batch.MaxWait, 3 * time.Second},
		{"MAX_IN_FLIGHT_BATCHES", c.Batch.MaxInFlight, 16},
		{"MAX_BUFFERED_BYTES", c.Batch.MaxBufferedBytes, int64(67108864)},
		{"HANDLER_MAX_ATTEMPTS", c.Batch.HandlerMaxAttempts, 3},
		{"HANDLER_RETRY_BACKOFF", c.Batch.HandlerRetryBackoff, 200 * time.Millisecond},
		{"HANDLER_RETRY_BACKOFF_MAX", c.Batch.HandlerBackoffMax, 10 * time.Second},
		{"HANDLER_MAX_RECORD_AGE", c.Batch.HandlerMaxRecordAge, time.Duration(0)},
		{"SHUTDOWN_TIMEOUT", c.Batch.ShutdownTimeout, 30 * time.Second},
		{"VALUE_FORMAT", c.Value.Format, FormatJSON},
		{"KEY_FORMAT", c.Key.Format, FormatString},
		{"VALUE_SCHEMA_FILE", c.Value.SchemaFile, ""},
		{"KEY_SCHEMA_FILE", c.Key.SchemaFile, ""},
		{"VALUE_PROTO_MESSAGE", c.Value.ProtoMessage, ""},
		{"KEY_PROTO_MESSAGE", c.Key.ProtoMessage, ""},
		{"VALUE_SCHEMA_REGISTRY", c.Value.Registry, RegistryNone},
		{"KEY_SCHEMA_REGISTRY", c.Key.Registry, RegistryNone},
		{"SCHEMA_REGISTRY_URL", c.Registry.URL, ""},
		{"SCHEMA_REGISTRY_USERNAME", c.Registry.Username, ""},
		{"SCHEMA_REGISTRY_PASSWORD", c.Registry.Password, ""},
		{"HANDLER", c.Handler.Name, "log"},
		{"HTTP_HANDLER_URL", c.Handler.HTTPURL, ""},
		{"HTTP_HANDLER_TIMEOUT", c.Handler.HTTPTimeout, 30 * time.Second},
		{"HTTP_HANDLER_AUTH_HEADER", c.Handler.HTTPAuth, ""},
		{"DLQ_TOPIC", c.DLQ.Topic, ""},
		{"DLQ TopicFor", c.DLQ.TopicFor("products"), "products.dlq"},
		{"METRICS_ADDR", c.Ops.MetricsAddr, ":9090"},
		{"LOG_LEVEL", c.Ops.LogLevel, "info"},
		{"LOG_FORMAT", c.Ops.LogFormat, LogJSON},
		{"UNREADY_AFTER", c.Ops.UnreadyAfter, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

// TestLoadInvalid checks that each invalid variable is reported, under its
// own name and no other, with what was expected.
func TestLoadInvalid(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	cert := tempFile(t, "cert.pem")
	key := tempFile(t, "key.pem")
	long := func(n int) string { return strings.Repeat("t", n) }

	tests := []struct {
		name     string
		env      map[string]string
		handlers []string
		want     []string // the variables reported, in order
		contains string   // a fragment of Error()
	}{
		{name: "brokers unset", env: without(env(), "KAFKA_BROKERS"), want: []string{"KAFKA_BROKERS"}, contains: "KAFKA_BROKERS: required: comma-separated host:port list"},
		{name: "brokers empty", env: env("KAFKA_BROKERS", ""), want: []string{"KAFKA_BROKERS"}, contains: "KAFKA_BROKERS: required"},
		{name: "brokers only commas", env: env("KAFKA_BROKERS", " , ,"), want: []string{"KAFKA_BROKERS"}, contains: "KAFKA_BROKERS: required"},
		{name: "broker without port", env: env("KAFKA_BROKERS", "b-1:9098,localhost"), want: []string{"KAFKA_BROKERS"}, contains: `KAFKA_BROKERS="localhost": expected host:port`},
		{name: "broker port out of range", env: env("KAFKA_BROKERS", "b-1:99999"), want: []string{"KAFKA_BROKERS"}, contains: `KAFKA_BROKERS="b-1:99999"`},
		{name: "broker port zero", env: env("KAFKA_BROKERS", "b-1:0"), want: []string{"KAFKA_BROKERS"}},
		{name: "broker port not numeric", env: env("KAFKA_BROKERS", "b-1:kafka"), want: []string{"KAFKA_BROKERS"}},
		{name: "broker without host", env: env("KAFKA_BROKERS", ":9092"), want: []string{"KAFKA_BROKERS"}, contains: "missing host"},
		{name: "broker with scheme", env: env("KAFKA_BROKERS", "kafka://b-1:9092"), want: []string{"KAFKA_BROKERS"}},
		{name: "two bad brokers", env: env("KAFKA_BROKERS", "a,b"), want: []string{"KAFKA_BROKERS", "KAFKA_BROKERS"}},
		{name: "topics unset", env: without(env(), "KAFKA_TOPICS"), want: []string{"KAFKA_TOPICS"}, contains: "KAFKA_TOPICS: required"},
		{name: "topic with space", env: env("KAFKA_TOPICS", "products,bad topic"), want: []string{"KAFKA_TOPICS"}, contains: `KAFKA_TOPICS="bad topic": expected a Kafka topic name`},
		{name: "topic dot", env: env("KAFKA_TOPICS", "."), want: []string{"KAFKA_TOPICS"}},
		{name: "topic dotdot", env: env("KAFKA_TOPICS", ".."), want: []string{"KAFKA_TOPICS"}},
		{name: "topic 250 chars", env: env("KAFKA_TOPICS", long(250)), want: []string{"KAFKA_TOPICS"}, contains: "250 characters"},
		{name: "group unset", env: without(env(), "KAFKA_GROUP_ID"), want: []string{"KAFKA_GROUP_ID"}, contains: "KAFKA_GROUP_ID: required"},
		{name: "group blank", env: env("KAFKA_GROUP_ID", "   "), want: []string{"KAFKA_GROUP_ID"}},
		{name: "auth unknown", env: env("KAFKA_AUTH", "kerberos"), want: []string{"KAFKA_AUTH"}, contains: `KAFKA_AUTH="kerberos": expected iam, scram-sha-512, scram-sha-256, plain or none`},
		{name: "tls not a bool", env: env("KAFKA_TLS", "yes"), want: []string{"KAFKA_TLS"}, contains: `KAFKA_TLS="yes": expected true, false, 1 or 0`},
		{name: "ca file missing", env: env("KAFKA_TLS_CA_FILE", missing), want: []string{"KAFKA_TLS_CA_FILE"}, contains: "no such file"},
		{name: "ca file is a directory", env: env("KAFKA_TLS_CA_FILE", dir), want: []string{"KAFKA_TLS_CA_FILE"}, contains: "not a directory"},
		{name: "cert without key", env: env("KAFKA_TLS_CERT_FILE", cert), want: []string{"KAFKA_TLS_KEY_FILE"}, contains: "KAFKA_TLS_KEY_FILE: required with KAFKA_TLS_CERT_FILE"},
		{name: "key without cert", env: env("KAFKA_TLS_KEY_FILE", key), want: []string{"KAFKA_TLS_CERT_FILE"}},
		{name: "key file missing", env: env("KAFKA_TLS_CERT_FILE", cert, "KAFKA_TLS_KEY_FILE", missing), want: []string{"KAFKA_TLS_KEY_FILE"}},
		{name: "insecure not a bool", env: env("KAFKA_TLS_INSECURE_SKIP_VERIFY", "maybe"), want: []string{"KAFKA_TLS_INSECURE_SKIP_VERIFY"}},
		{name: "scram without username", env: env("KAFKA_AUTH", "scram-sha-512", "KAFKA_SASL_PASSWORD", "p"), want: []string{"KAFKA_SASL_USERNAME"}, contains: "KAFKA_SASL_USERNAME: required with KAFKA_AUTH=scram-sha-512"},
		{name: "scram-256 without password", env: env("KAFKA_AUTH", "scram-sha-256", "KAFKA_SASL_USERNAME", "u"), want: []string{"KAFKA_SASL_PASSWORD"}},
		{name: "plain without credentials", env: env("KAFKA_AUTH", "plain"), want: []string{"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"}},
		{name: "iam without region", env: without(env(), "AWS_REGION"), want: []string{"AWS_REGION"}, contains: "AWS_REGION: required with KAFKA_AUTH=iam"},
		{name: "role arn malformed", env: env("KAFKA_IAM_ROLE_ARN", "my-role"), want: []string{"KAFKA_IAM_ROLE_ARN"}},
		{name: "session name too short", env: env("KAFKA_IAM_SESSION_NAME", "a"), want: []string{"KAFKA_IAM_SESSION_NAME"}},
		{name: "session name bad char", env: env("KAFKA_IAM_SESSION_NAME", "msk consumer"), want: []string{"KAFKA_IAM_SESSION_NAME"}},
		{name: "start offset unknown", env: env("KAFKA_START_OFFSET", "beginning"), want: []string{"KAFKA_START_OFFSET"}, contains: "expected earliest or latest"},
		{name: "session timeout without unit", env: env("KAFKA_SESSION_TIMEOUT", "45"), want: []string{"KAFKA_SESSION_TIMEOUT"}, contains: `KAFKA_SESSION_TIMEOUT="45": expected a Go duration > 0`},
		{name: "session timeout zero", env: env("KAFKA_SESSION_TIMEOUT", "0s"), want: []string{"KAFKA_SESSION_TIMEOUT"}},
		{name: "heartbeat negative", env: env("KAFKA_HEARTBEAT_INTERVAL", "-1s"), want: []string{"KAFKA_HEARTBEAT_INTERVAL"}},
		{name: "group type unknown", env: env("KAFKA_GROUP_TYPE", "queue"), want: []string{"KAFKA_GROUP_TYPE"}, contains: `KAFKA_GROUP_TYPE="queue": expected consumer or share`},
		{name: "share with partition order", env: env("KAFKA_GROUP_TYPE", "share", "PROCESSING_ORDER", "partition"), want: []string{"PROCESSING_ORDER"}, contains: "expected unset or none with KAFKA_GROUP_TYPE=share"},
		{name: "share with key order", env: env("KAFKA_GROUP_TYPE", "share", "PROCESSING_ORDER", "key"), want: []string{"PROCESSING_ORDER"}, contains: "no order (of a partition or of a key) can be kept"},
		{name: "heartbeat not below session", env: env("KAFKA_HEARTBEAT_INTERVAL", "45s"), want: []string{"KAFKA_HEARTBEAT_INTERVAL"}, contains: "less than KAFKA_SESSION_TIMEOUT (45s)"},
		{name: "rebalance timeout garbage", env: env("KAFKA_REBALANCE_TIMEOUT", "soon"), want: []string{"KAFKA_REBALANCE_TIMEOUT"}},
		{name: "instance id illegal", env: env("KAFKA_INSTANCE_ID", "pod/0"), want: []string{"KAFKA_INSTANCE_ID"}},
		{name: "group protocol unknown", env: env("KAFKA_GROUP_PROTOCOL", "kip848"), want: []string{"KAFKA_GROUP_PROTOCOL"}, contains: "expected classic or consumer"},
		{name: "commit interval zero", env: env("KAFKA_COMMIT_INTERVAL", "0"), want: []string{"KAFKA_COMMIT_INTERVAL"}},
		{name: "startup timeout zero", env: env("STARTUP_TIMEOUT", "0s"), want: []string{"STARTUP_TIMEOUT"}, contains: `STARTUP_TIMEOUT="0s": expected a Go duration > 0`},
		{name: "startup timeout negative", env: env("STARTUP_TIMEOUT", "-2m"), want: []string{"STARTUP_TIMEOUT"}},
		{name: "startup timeout without unit", env: env("STARTUP_TIMEOUT", "120"), want: []string{"STARTUP_TIMEOUT"}, contains: `STARTUP_TIMEOUT="120": expected a Go duration > 0`},
		{name: "batch records not a number", env: env("BATCH_MAX_RECORDS", "abc"), want: []string{"BATCH_MAX_RECORDS"}, contains: `BATCH_MAX_RECORDS="abc": expected a whole number >= 1`},
		{name: "batch records zero", env: env("BATCH_MAX_RECORDS", "0"), want: []string{"BATCH_MAX_RECORDS"}, contains: `BATCH_MAX_RECORDS="0": expected a whole number >= 1`},
		{name: "batch records hex", env: env("BATCH_MAX_RECORDS", "0x10"), want: []string{"BATCH_MAX_RECORDS"}},
		{name: "batch bytes negative", env: env("BATCH_MAX_BYTES", "-1"), want: []string{"BATCH_MAX_BYTES"}},
		{name: "batch wait zero", env: env("BATCH_MAX_WAIT", "0s"), want: []string{"BATCH_MAX_WAIT"}},
		{name: "in flight zero", env: env("MAX_IN_FLIGHT_BATCHES", "0"), want: []string{"MAX_IN_FLIGHT_BATCHES"}},
		{name: "buffered below batch bytes", env: env("MAX_BUFFERED_BYTES", "1000"), want: []string{"MAX_BUFFERED_BYTES"}, contains: "expected a whole number >= BATCH_MAX_BYTES (4194304)"},
		{name: "buffered overflows", env: env("MAX_BUFFERED_BYTES", "99999999999999999999"), want: []string{"MAX_BUFFERED_BYTES"}},
		{name: "attempts zero", env: env("HANDLER_MAX_ATTEMPTS", "0"), want: []string{"HANDLER_MAX_ATTEMPTS"}},
		{name: "backoff zero", env: env("HANDLER_RETRY_BACKOFF", "0s"), want: []string{"HANDLER_RETRY_BACKOFF"}},
		{name: "backoff max below backoff", env: env("HANDLER_RETRY_BACKOFF_MAX", "100ms"), want: []string{"HANDLER_RETRY_BACKOFF_MAX"}, contains: ">= HANDLER_RETRY_BACKOFF (200ms)"},
		{name: "record age zero", env: env("HANDLER_MAX_RECORD_AGE", "0s"), want: []string{"HANDLER_MAX_RECORD_AGE"}, contains: `HANDLER_MAX_RECORD_AGE="0s": expected a Go duration > 0, such as 250ms, 3s or 2m, or unset for no limit`},
		{name: "record age bare zero", env: env("HANDLER_MAX_RECORD_AGE", "0"), want: []string{"HANDLER_MAX_RECORD_AGE"}},
		{name: "record age negative", env: env("HANDLER_MAX_RECORD_AGE", "-1h"), want: []string{"HANDLER_MAX_RECORD_AGE"}, contains: "or unset for no limit"},
		{name: "record age words", env: env("HANDLER_MAX_RECORD_AGE", "1 day"), want: []string{"HANDLER_MAX_RECORD_AGE"}},
		{name: "shutdown zero", env: env("SHUTDOWN_TIMEOUT", "0s"), want: []string{"SHUTDOWN_TIMEOUT"}},
		{name: "value format unknown", env: env("VALUE_FORMAT", "xml"), want: []string{"VALUE_FORMAT"}, contains: "expected json, avro, protobuf, string, bytes, int or long"},
		{name: "key format unknown", env: env("KEY_FORMAT", "uuid"), want: []string{"KEY_FORMAT"}},
		{name: "avro without schema or registry", env: env("VALUE_FORMAT", "avro"), want: []string{"VALUE_SCHEMA_FILE"}, contains: "VALUE_SCHEMA_FILE: required with VALUE_FORMAT=avro"},
		{name: "key avro without schema", env: env("KEY_FORMAT", "avro"), want: []string{"KEY_SCHEMA_FILE"}},
		{name: "protobuf without message or file", env: env("VALUE_FORMAT", "protobuf"), want: []string{"VALUE_SCHEMA_FILE", "VALUE_PROTO_MESSAGE"}},
		{name: "protobuf file without message", env: env("VALUE_FORMAT", "protobuf", "VALUE_SCHEMA_FILE", cert, "VALUE_SCHEMA_REGISTRY", "glue"), want: []string{"VALUE_PROTO_MESSAGE"}},
		{name: "schema file missing", env: env("VALUE_FORMAT", "avro", "VALUE_SCHEMA_FILE", missing), want: []string{"VALUE_SCHEMA_FILE"}},
		{name: "registry unknown", env: env("VALUE_SCHEMA_REGISTRY", "apicurio"), want: []string{"VALUE_SCHEMA_REGISTRY"}, contains: "expected none, confluent or glue"},
		{name: "registry with string", env: env("KEY_SCHEMA_REGISTRY", "glue"), want: []string{"KEY_SCHEMA_REGISTRY"}, contains: "only to avro, protobuf and json"},
		{name: "confluent without url", env: env("VALUE_FORMAT", "avro", "VALUE_SCHEMA_REGISTRY", "confluent"), want: []string{"SCHEMA_REGISTRY_URL"}, contains: "SCHEMA_REGISTRY_URL: required"},
		{name: "registry url without scheme", env: env("VALUE_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "registry:8081"), want: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "registry url relative", env: env("SCHEMA_REGISTRY_URL", "/subjects"), want: []string{"SCHEMA_REGISTRY_URL"}},
		{name: "registry username without password", env: env("SCHEMA_REGISTRY_USERNAME", "u"), want: []string{"SCHEMA_REGISTRY_PASSWORD"}},
		{name: "registry password without username", env: env("SCHEMA_REGISTRY_PASSWORD", "p"), want: []string{"SCHEMA_REGISTRY_USERNAME"}},
		{name: "handler unknown", env: env("HANDLER", "kinesis"), handlers: []string{"brandsync"}, want: []string{"HANDLER"}, contains: `HANDLER="kinesis": expected log, http, lambda, discard or brandsync`},
		{name: "handler name is case-sensitive", env: env("HANDLER", "Log"), want: []string{"HANDLER"}},
		{name: "http without url", env: env("HANDLER", "http"), want: []string{"HTTP_HANDLER_URL"}, contains: "HTTP_HANDLER_URL: required with HANDLER=http"},
		{name: "http url ftp", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "ftp://example.com/x"), want: []string{"HTTP_HANDLER_URL"}, contains: "scheme must be http or https"},
		{name: "http url unparsable", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "http://h x/?token=t"), want: []string{"HTTP_HANDLER_URL"}, contains: `HTTP_HANDLER_URL="<redacted>": expected an absolute http or https URL: does not parse`},
		{name: "http url query redacted", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "ftp://h/x?token=t&a=b"), want: []string{"HTTP_HANDLER_URL"}, contains: `HTTP_HANDLER_URL="ftp://h/x?token=REDACTED&a=REDACTED": expected`},
		{name: "http url without host", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "http:///x"), want: []string{"HTTP_HANDLER_URL"}},
		{name: "http timeout zero", env: env("HTTP_HANDLER_TIMEOUT", "0s"), want: []string{"HTTP_HANDLER_TIMEOUT"}},
		{name: "lambda without function", env: env("HANDLER", "lambda"), want: []string{"LAMBDA_FUNCTION_NAME"}, contains: "LAMBDA_FUNCTION_NAME: required with HANDLER=lambda"},
		{name: "event record format", env: env("HANDLER", "lambda", "LAMBDA_FUNCTION_NAME", "fn", "EVENT_RECORD_FORMAT", "avro"), want: []string{"EVENT_RECORD_FORMAT"}, contains: "expected source or json"},
		{name: "http handler body", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "http://h/x", "HTTP_HANDLER_BODY", "kafka"), want: []string{"HTTP_HANDLER_BODY"}, contains: "expected batch or msk"},
		{name: "lambda timeout zero", env: env("HANDLER", "lambda", "LAMBDA_FUNCTION_NAME", "fn", "LAMBDA_INVOKE_TIMEOUT", "0s"), want: []string{"LAMBDA_INVOKE_TIMEOUT"}},
		{name: "auth header with newline", env: env("HTTP_HANDLER_AUTH_HEADER", "Bearer x\n"), want: []string{"HTTP_HANDLER_AUTH_HEADER"}},
		{name: "dlq is a source topic", env: env("KAFKA_TOPICS", "products,prices", "DLQ_TOPIC", "prices"), want: []string{"DLQ_TOPIC"}, contains: "not in KAFKA_TOPICS"},
		{name: "dlq illegal", env: env("DLQ_TOPIC", "dead/letters"), want: []string{"DLQ_TOPIC"}},
		{name: "default dlq too long", env: env("KAFKA_TOPICS", long(249)), want: []string{"DLQ_TOPIC"}, contains: "set DLQ_TOPIC"},
		{name: "default dlq is a source topic", env: env("KAFKA_TOPICS", "a,a.dlq"), want: []string{"DLQ_TOPIC"}, contains: `for "a" is "a.dlq", which is also in KAFKA_TOPICS`},
		{name: "metrics addr without colon", env: env("METRICS_ADDR", "9090"), want: []string{"METRICS_ADDR"}, contains: `METRICS_ADDR="9090": expected a listen address host:port`},
		{name: "metrics port named", env: env("METRICS_ADDR", ":http"), want: []string{"METRICS_ADDR"}},
		{name: "log level unknown", env: env("LOG_LEVEL", "verbose"), want: []string{"LOG_LEVEL"}, contains: "expected debug, info, warn or error"},
		{name: "log format unknown", env: env("LOG_FORMAT", "text"), want: []string{"LOG_FORMAT"}, contains: "expected json or console"},
		{name: "unready after zero", env: env("UNREADY_AFTER", "0s"), want: []string{"UNREADY_AFTER"}},
		{name: "unready after words", env: env("UNREADY_AFTER", "1 minute"), want: []string{"UNREADY_AFTER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(lookup(tt.env), tt.handlers...)
			errs := problems(t, err)
			if got := varsOf(errs); !slices.Equal(got, tt.want) {
				t.Fatalf("got problems %q, want %q\n%v", got, tt.want, err)
			}
			for _, p := range errs {
				if p.Expected == "" {
					t.Errorf("got empty Expected for %s, want what was expected", p.Var)
				}
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d lines in Error(), want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, line := range lines {
				if !strings.HasPrefix(line, tt.want[min(i, len(tt.want)-1)]) {
					t.Errorf("got line %q, want it to start with the variable name", line)
				}
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("got %q, want it to contain %q", err.Error(), tt.contains)
			}
		})
	}
}

// TestLoadValid checks combinations that must be accepted, and what they
// load as.
func TestLoadValid(t *testing.T) {
	cert := tempFile(t, "cert.pem")
	key := tempFile(t, "key.pem")
	schema := tempFile(t, "product.avsc")

	tests := []struct {
		name     string
		env      map[string]string
		handlers []string
		got      func(Config) any
		want     any
	}{
		{name: "empty optional variable is unset", env: env("BATCH_MAX_RECORDS", "", "LOG_LEVEL", "  "), got: func(c Config) any { return []any{c.Batch.MaxRecords, c.Ops.LogLevel} }, want: []any{500, "info"}},
		{name: "lists trimmed, empties and duplicates dropped", env: env("KAFKA_TOPICS", " products , ,prices,products,"), got: func(c Config) any { return c.Kafka.Topics }, want: []string{"products", "prices"}},
		{name: "values trimmed", env: env("BATCH_MAX_RECORDS", " 10 ", "BATCH_MAX_WAIT", " 250ms"), got: func(c Config) any { return []any{c.Batch.MaxRecords, c.Batch.MaxWait} }, want: []any{10, 250 * time.Millisecond}},
		{name: "enumerations case-insensitive", env: env("KAFKA_AUTH", "IAM", "LOG_FORMAT", "Console", "VALUE_FORMAT", "JSON"), got: func(c Config) any { return []any{c.Kafka.Auth, c.Ops.LogFormat, c.Value.Format} }, want: []any{AuthIAM, LogConsole, FormatJSON}},
		{name: "scram with credentials", env: env("KAFKA_AUTH", "scram-sha-512", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", " p w "), got: func(c Config) any { return []any{c.Kafka.Auth, c.Kafka.SASLPassword, c.Kafka.TLS} }, want: []any{AuthSCRAMSHA512, " p w ", true}},
		{name: "none needs no region", env: without(env("KAFKA_AUTH", "none"), "AWS_REGION"), got: func(c Config) any { return c.Kafka.TLS }, want: false},
		{name: "sasl without tls when explicit", env: env("KAFKA_AUTH", "plain", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p", "KAFKA_TLS", "false"), got: func(c Config) any { return []any{c.Kafka.TLS, c.Kafka.TLSExplicit} }, want: []any{false, true}},
		{name: "mtls", env: env("KAFKA_TLS_CA_FILE", cert, "KAFKA_TLS_CERT_FILE", cert, "KAFKA_TLS_KEY_FILE", key), got: func(c Config) any { return c.Kafka.TLSKeyFile }, want: key},
		{name: "insecure skip verify", env: env("KAFKA_TLS_INSECURE_SKIP_VERIFY", "TRUE"), got: func(c Config) any { return c.Kafka.TLSInsecureSkipVerify }, want: true},
		{name: "role arn", env: env("KAFKA_IAM_ROLE_ARN", "arn:aws:iam::123456789012:role/msk-reader"), got: func(c Config) any { return c.Kafka.IAMRoleARN }, want: "arn:aws:iam::123456789012:role/msk-reader"},
		{name: "start latest", env: env("KAFKA_START_OFFSET", "latest"), got: func(c Config) any { return c.Kafka.StartOffset }, want: StartLatest},
		{name: "instance id is a pod name", env: env("KAFKA_INSTANCE_ID", "consumer-0"), got: func(c Config) any { return c.Kafka.InstanceID }, want: "consumer-0"},
		{name: "group protocol consumer", env: env("KAFKA_GROUP_PROTOCOL", "Consumer"), got: func(c Config) any { return c.Kafka.GroupProtocol }, want: GroupConsumer},
		{name: "group type default", env: env(), got: func(c Config) any { return []any{c.Kafka.GroupType, c.Batch.Order, c.Batch.OrderExplicit} }, want: []any{GroupTypeConsumer, OrderPartition, false}},
		{name: "share, order unset is none", env: env("KAFKA_GROUP_TYPE", "Share"), got: func(c Config) any { return []any{c.Kafka.GroupType, c.Batch.Order, c.Batch.OrderExplicit} }, want: []any{GroupTypeShare, OrderNone, false}},
		{name: "share, order none", env: env("KAFKA_GROUP_TYPE", "share", "PROCESSING_ORDER", "none"), got: func(c Config) any { return []any{c.Batch.Order, c.Batch.OrderExplicit} }, want: []any{OrderNone, true}},
		{name: "commit interval", env: env("KAFKA_COMMIT_INTERVAL", "1s"), got: func(c Config) any { return c.Kafka.CommitInterval }, want: time.Second},
		{name: "startup timeout", env: env("STARTUP_TIMEOUT", " 90s "), got: func(c Config) any { return c.Kafka.StartupTimeout }, want: 90 * time.Second},
		{name: "record age", env: env("HANDLER_MAX_RECORD_AGE", "6h"), got: func(c Config) any { return c.Batch.HandlerMaxRecordAge }, want: 6 * time.Hour},
		{name: "record age empty is no limit", env: env("HANDLER_MAX_RECORD_AGE", " "), got: func(c Config) any { return c.Batch.HandlerMaxRecordAge }, want: time.Duration(0)},
		{name: "buffered equals batch bytes", env: env("BATCH_MAX_BYTES", "1000", "MAX_BUFFERED_BYTES", "1000"), got: func(c Config) any { return c.Batch.MaxBufferedBytes }, want: int64(1000)},
		{name: "avro with local schema", env: env("VALUE_FORMAT", "avro", "VALUE_SCHEMA_FILE", schema), got: func(c Config) any { return c.Value }, want: Codec{Format: FormatAvro, SchemaFile: schema, Registry: RegistryNone}},
		{name: "avro confluent without schema", env: env("VALUE_FORMAT", "avro", "VALUE_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "https://u:p@registry.example.com"), got: func(c Config) any { return c.Value.Registry }, want: RegistryConfluent},
		{name: "avro glue without schema", env: env("VALUE_FORMAT", "avro", "VALUE_SCHEMA_REGISTRY", "glue"), got: func(c Config) any { return c.Value.Registry }, want: RegistryGlue},
		{name: "protobuf confluent without file", env: env("KEY_FORMAT", "protobuf", "KEY_PROTO_MESSAGE", "shop.v1.Key", "KEY_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "http://registry:8081"), got: func(c Config) any { return c.Key.ProtoMessage }, want: "shop.v1.Key"},
		{name: "json with confluent framing", env: env("VALUE_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "http://registry:8081"), got: func(c Config) any { return c.Value.Registry }, want: RegistryConfluent},
		{name: "compiled handler", env: env("HANDLER", "brandsync"), handlers: []string{"brandsync"}, got: func(c Config) any { return c.Handler.Name }, want: "brandsync"},
		{name: "http handler", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "https://api.example.com/batches"), got: func(c Config) any { return c.Handler.HTTPURL }, want: "https://api.example.com/batches"},
		{name: "discard handler", env: env("HANDLER", "discard"), got: func(c Config) any { return c.Handler.Name }, want: "discard"},
		{name: "dlq topic", env: env("DLQ_TOPIC", "dead-letters"), got: func(c Config) any { return c.DLQ.TopicFor("products") }, want: "dead-letters"},
		{name: "topic of 245 chars has a legal default dlq", env: env("KAFKA_TOPICS", strings.Repeat("t", 245)), got: func(c Config) any { return len(c.DLQ.TopicFor(c.Kafka.Topics[0])) }, want: 249},
		{name: "metrics ephemeral port", env: env("METRICS_ADDR", "127.0.0.1:0"), got: func(c Config) any { return c.Ops.MetricsAddr }, want: "127.0.0.1:0"},
		{name: "unready after", env: env("UNREADY_AFTER", "2m"), got: func(c Config) any { return c.Ops.UnreadyAfter }, want: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env), tt.handlers...)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	m := without(env(
		"KAFKA_AUTH", "scram-sha-512",
		"KAFKA_TLS", "maybe",
		"KAFKA_SESSION_TIMEOUT", "forever",
		"BATCH_MAX_RECORDS", "abc",
		"MAX_IN_FLIGHT_BATCHES", "0",
		"VALUE_FORMAT", "xml",
		"KEY_SCHEMA_REGISTRY", "confluent",
		"HANDLER", "http",
		"DLQ_TOPIC", "products",
		"LOG_LEVEL", "loud",
		"UNREADY_AFTER", "-1s",
		"KAFKA_COMMIT_INTERVAL", "0s",
		"STARTUP_TIMEOUT", "never",
		"HANDLER_MAX_RECORD_AGE", "0s",
	), "KAFKA_BROKERS", "KAFKA_GROUP_ID")
	// Parse problems (KAFKA_TLS, KAFKA_SESSION_TIMEOUT, BATCH_MAX_RECORDS)
	// and validation problems are merged in the contract's order.
	want := []string{
		"KAFKA_BROKERS",
		"KAFKA_GROUP_ID",
		"KAFKA_TLS",
		"KAFKA_SASL_USERNAME",
		"KAFKA_SASL_PASSWORD",
		"KAFKA_SESSION_TIMEOUT",
		"STARTUP_TIMEOUT",
		"KAFKA_COMMIT_INTERVAL",
		"BATCH_MAX_RECORDS",
		"MAX_IN_FLIGHT_BATCHES",
		"HANDLER_MAX_RECORD_AGE",
		"VALUE_FORMAT",
		"KEY_SCHEMA_REGISTRY",
		"SCHEMA_REGISTRY_URL",
		"HTTP_HANDLER_URL",
		"DLQ_TOPIC",
		"LOG_LEVEL",
		"UNREADY_AFTER",
	}
	_, err := Load(lookup(m))
	errs := problems(t, err)
	if got := varsOf(errs); !slices.Equal(got, want) {
		t.Fatalf("got problems %q, want %q\n%v", got, want, err)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("got %d lines, want %d", got, len(want))
	}
}

func TestLoadRegion(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "AWS_REGION", env: env("AWS_REGION", "eu-west-1"), want: "eu-west-1"},
		{name: "AWS_DEFAULT_REGION fallback", env: without(env("AWS_DEFAULT_REGION", "us-east-2"), "AWS_REGION"), want: "us-east-2"},
		{name: "AWS_REGION wins", env: env("AWS_REGION", "eu-west-1", "AWS_DEFAULT_REGION", "us-east-2"), want: "eu-west-1"},
		{name: "empty AWS_REGION falls back", env: env("AWS_REGION", "", "AWS_DEFAULT_REGION", "us-east-2"), want: "us-east-2"},
		{name: "neither", env: without(env(), "AWS_REGION"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if c.Kafka.AWSRegion != tt.want {
				t.Errorf("got region %q, want %q", c.Kafka.AWSRegion, tt.want)
			}
		})
	}
}

func TestLoadTLSDefault(t *testing.T) {
	creds := []string{"KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"}
	tests := []struct {
		name         string
		env          map[string]string
		wantTLS      bool
		wantExplicit bool
	}{
		{name: "iam", env: env(), wantTLS: true},
		{name: "scram-sha-512", env: env(append(creds, "KAFKA_AUTH", "scram-sha-512")...), wantTLS: true},
		{name: "scram-sha-256", env: env(append(creds, "KAFKA_AUTH", "scram-sha-256")...), wantTLS: true},
		{name: "plain", env: env(append(creds, "KAFKA_AUTH", "plain")...), wantTLS: true},
		{name: "none", env: env("KAFKA_AUTH", "none"), wantTLS: false},
		{name: "none with tls", env: env("KAFKA_AUTH", "none", "KAFKA_TLS", "1"), wantTLS: true, wantExplicit: true},
		{name: "iam with tls false", env: env("KAFKA_TLS", "0"), wantTLS: false, wantExplicit: true},
		{name: "iam with tls TRUE", env: env("KAFKA_TLS", "TRUE"), wantTLS: true, wantExplicit: true},
		{name: "empty tls is unset", env: env("KAFKA_AUTH", "none", "KAFKA_TLS", ""), wantTLS: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env))
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if c.Kafka.TLS != tt.wantTLS || c.Kafka.TLSExplicit != tt.wantExplicit {
				t.Errorf("got TLS %v explicit %v, want TLS %v explicit %v",
					c.Kafka.TLS, c.Kafka.TLSExplicit, tt.wantTLS, tt.wantExplicit)
			}
		})
	}
}

func TestLoadEmptyEnvironment(t *testing.T) {
	_, err := Load(lookup(map[string]string{}))
	want := []string{"KAFKA_BROKERS", "KAFKA_TOPICS", "KAFKA_GROUP_ID", "AWS_REGION"}
	if got := varsOf(problems(t, err)); !slices.Equal(got, want) {
		t.Errorf("got problems %q, want %q", got, want)
	}
}

// TestProtobufFromRegistry: with a registry and no local descriptor set the
// schema and the message come from the registry, so neither is required.
func TestProtobufFromRegistry(t *testing.T) {
	for _, reg := range []string{"confluent", "glue"} {
		t.Run(reg, func(t *testing.T) {
			e := map[string]string{
				"KAFKA_BROKERS": "b:9092", "KAFKA_TOPICS": "t", "KAFKA_GROUP_ID": "g", "AWS_REGION": "eu-west-1",
				"VALUE_FORMAT": "protobuf", "VALUE_SCHEMA_REGISTRY": reg, "SCHEMA_REGISTRY_URL": "http://registry:8081",
			}
			if _, err := Load(func(k string) (string, bool) { v, ok := e[k]; return v, ok }); err != nil {
				t.Fatalf("got %v, want a valid configuration", err)
			}
		})
	}
}
