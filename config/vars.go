package config

import (
	"slices"
	"strings"
	"time"
)

// The names of the environment variables. Each is the Name of one entry of
// variables below (AWS_DEFAULT_REGION is AWS_REGION's Fallback); the
// constants exist for the rules that involve several variables and for
// tests. TestEnvConstantsInTable checks that none is left out of the table.
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
	envKafkaGroupProtocol    = "KAFKA_GROUP_PROTOCOL"
	envKafkaGroupType        = "KAFKA_GROUP_TYPE"
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
	envProcessingOrder     = "PROCESSING_ORDER"
	envPartitionLanes      = "PARTITION_CONCURRENCY"
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
	envHTTPHandlerBody    = "HTTP_HANDLER_BODY"
	envLambdaFunction     = "LAMBDA_FUNCTION_NAME"
	envLambdaTimeout      = "LAMBDA_INVOKE_TIMEOUT"
	envEventRecordFormat  = "EVENT_RECORD_FORMAT"
	envKafkaClusterARN    = "KAFKA_CLUSTER_ARN"

	envDLQTopic = "DLQ_TOPIC"

	envIdempotencyStore      = "IDEMPOTENCY_STORE"
	envIdempotencyTTL        = "IDEMPOTENCY_TTL"
	envIdempotencyKey        = "IDEMPOTENCY_KEY"
	envIdempotencyKeyPrefix  = "IDEMPOTENCY_KEY_PREFIX"
	envIdempotencyInProgress = "IDEMPOTENCY_IN_PROGRESS_TTL"
	envRedisURL              = "REDIS_URL"
	envIdempotencyTable      = "IDEMPOTENCY_TABLE"

	envMetricsAddr  = "METRICS_ADDR"
	envLogLevel     = "LOG_LEVEL"
	envLogFormat    = "LOG_FORMAT"
	envUnreadyAfter = "UNREADY_AFTER"

	envOTELTracesExporter     = "OTEL_TRACES_EXPORTER"
	envOTELEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTELTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envOTELProtocol           = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envOTELHeaders            = "OTEL_EXPORTER_OTLP_HEADERS"
	envOTELTracesHeaders      = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
	envOTELServiceName        = "OTEL_SERVICE_NAME"
	envOTELResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	envOTELTracesSampler      = "OTEL_TRACES_SAMPLER"
	envOTELTracesSamplerArg   = "OTEL_TRACES_SAMPLER_ARG"
	envOTELSDKDisabled        = "OTEL_SDK_DISABLED"
	envOTELTracesProtocol     = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envOTELPropagators        = "OTEL_PROPAGATORS"
)

// section is a heading of the README's configuration reference.
type section string

// The sections, in the README's order.
const (
	sectionKafka    section = "Kafka connection"
	sectionBatch    section = "Batching and processing"
	sectionDecoding section = "Decoding"
	sectionHandler  section = "Handler"
	sectionDLQ      section = "Dead-letter topic"
	sectionIdem     section = "Idempotency"
	sectionOps      section = "Operations"
	sectionTracing  section = "Tracing"
)

// variable is everything about one environment variable: Load, Validate,
// Print, CheckNames and the README's reference tables all read it from
// here, so a variable is added, documented or changed in one place (and its
// field and Default* constant in config.go). The shape follows Redpanda
// Connect's service.ConfigField: a name, a default, a description and flags,
// with the documentation generated from the specs.
type variable struct {
	Name    string
	Section section
	// Default is the README's "default" column: a value in backticks,
	// which TestDocumentedDefaults checks against the Default* constant
	// Load uses, or words such as "required" or "unset".
	Default string
	// Help is the README's "meaning" column, one line of Markdown.
	Help string
	// Secret values are never shown: Print writes <redacted>, problems
	// leave the value out, and Load takes the value untrimmed.
	Secret bool
	// Extension marks a variable the operator contract does not name; the
	// README says so.
	Extension bool
	// Fallback is a variable read when this one is unset; it is known to
	// CheckNames but never printed or reported on its own.
	Fallback string
	// SameRow documents the variable in the previous entry's README row,
	// its name joined with this separator (", " or " / "); its own Default
	// and Help are then empty.
	SameRow string
	// Unused, if not nil, says why the variable has no effect given the
	// rest of the configuration, or "" when it has. A variable set but
	// unused is a warning (Config.Unused), never a problem, and its value
	// is not checked: platforms inject variables meant for other
	// containers.
	Unused func(c *Config) string
	// Print, if not nil, is what Print writes instead of the value.
	Print func(c *Config) string

	value value
}

// The valid values of the choices, in the order problems list them.
var (
	auths        = []Auth{AuthIAM, AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain, AuthNone}
	saslAuths    = []Auth{AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain}
	startOffsets = []StartOffset{StartEarliest, StartLatest}
	formats      = []Format{FormatJSON, FormatAvro, FormatProtobuf, FormatString, FormatBytes, FormatInt, FormatLong}
	registries   = []Registry{RegistryNone, RegistryConfluent, RegistryGlue}
	builtins     = []string{HandlerLog, HandlerHTTP, HandlerLambda, HandlerDiscard}
	httpBodies   = []HTTPBody{BodyBatch, BodyMSK}
	recFormats   = []RecordFormat{RecordSource, RecordJSON}
	logLevels    = []string{"debug", "info", "warn", "error"}
	logFormats   = []LogFormat{LogJSON, LogConsole}
	idemStores   = []IdempotencyStore{StoreNone, StoreRedis, StoreDynamoDB}
	orders       = []Order{OrderPartition, OrderKey, OrderNone}
	groupProtos  = []GroupProtocol{GroupClassic, GroupConsumer}
	groupTypes   = []GroupType{GroupTypeConsumer, GroupTypeShare}
	exporters    = []TracesExporter{ExporterNone, ExporterOTLP, ExporterConsole}
	protocols    = []OTLPProtocol{ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC}
	samplers     = []Sampler{SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio, SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio}
)

// variables is the configuration: the contract's table order, with the
// extensions at the end of their sections. Problems are sorted by it, Print
// follows it, and the README's tables are generated from it (Reference).
var variables = []variable{
	// Kafka connection.
	{Name: envKafkaBrokers, Section: sectionKafka, Default: "required",
		Help: "comma-separated `host:port` bootstrap brokers",
		value: list{at: func(c *Config) *[]string { return &c.Kafka.Brokers },
			required: "required: comma-separated host:port list",
			expect:   brokerProblem}},
	{Name: envKafkaTopics, Section: sectionKafka, Default: "required",
		Help: "comma-separated topics to consume; each must exist (checked at start, exit 1 if not)",
		value: list{at: func(c *Config) *[]string { return &c.Kafka.Topics },
			required: "required: comma-separated list of topics",
			expect:   topicExpect}},
	{Name: envKafkaGroupID, Section: sectionKafka, Default: "required",
		Help: "consumer group; use one per environment, e.g. `brands-sync-prod`",
		value: str{at: func(c *Config) *string { return &c.Kafka.GroupID },
			required: "required: the consumer group id, one per environment"}},
	{Name: envKafkaAuth, Section: sectionKafka, Default: "`iam`",
		Help:  "`iam` (MSK IAM over SASL OAUTHBEARER), `scram-sha-512`, `scram-sha-256`, `plain`, `none`",
		value: choice[Auth]{at: func(c *Config) *Auth { return &c.Kafka.Auth }, def: DefaultAuth, choices: auths}},
	{Name: envKafkaTLS, Section: sectionKafka, Default: "`true` unless `KAFKA_AUTH=none`",
		Help: "TLS to the brokers; SASL without TLS is refused unless `KAFKA_TLS=false` is explicit",
		value: boolean{at: func(c *Config) *bool { return &c.Kafka.TLS },
			def:      func(c *Config) bool { return c.Kafka.Auth != AuthNone },
			explicit: func(c *Config) *bool { return &c.Kafka.TLSExplicit }}},
	{Name: envKafkaTLSCAFile, Section: sectionKafka, Default: "system roots",
		Help: "PEM bundle to verify brokers", Unused: tlsOff,
		value: str{at: func(c *Config) *string { return &c.Kafka.TLSCAFile }, expect: readableFile}},
	{Name: envKafkaTLSCertFile, Section: sectionKafka, Default: "unset",
		Help: "client certificate for mTLS (both or neither)", Unused: tlsOff,
		value: str{at: func(c *Config) *string { return &c.Kafka.TLSCertFile }, expect: readableFile}},
	{Name: envKafkaTLSKeyFile, Section: sectionKafka, SameRow: ", ", Unused: tlsOff,
		value: str{at: func(c *Config) *string { return &c.Kafka.TLSKeyFile }, expect: readableFile}},
	{Name: envKafkaTLSServerName, Section: sectionKafka, Default: "from the broker address",
		Help: "SNI / verification name override", Unused: tlsOff,
		value: str{at: func(c *Config) *string { return &c.Kafka.TLSServerName }}},
	{Name: envKafkaTLSInsecure, Section: sectionKafka, Default: "`false`",
		Help: "only for local tests; logs a warning at start", Unused: tlsOff,
		value: boolean{at: func(c *Config) *bool { return &c.Kafka.TLSInsecureSkipVerify }}},
	{Name: envKafkaSASLUsername, Section: sectionKafka, Default: "unset",
		Help: "for `scram-*` and `plain`", Unused: saslUnused,
		value: str{at: func(c *Config) *string { return &c.Kafka.SASLUsername }}},
	{Name: envKafkaSASLPassword, Section: sectionKafka, SameRow: ", ", Secret: true, Unused: saslUnused,
		value: str{at: func(c *Config) *string { return &c.Kafka.SASLPassword }}},
	{Name: envAWSRegion, Section: sectionKafka, Default: "`AWS_DEFAULT_REGION`", Fallback: envAWSDefaultRegion,
		Help:  "region for MSK IAM tokens; required with `iam`",
		value: str{at: func(c *Config) *string { return &c.Kafka.AWSRegion }}},
	{Name: envKafkaIAMRoleARN, Section: sectionKafka, Default: "unset",
		Help: "role to assume for MSK IAM; otherwise the AWS default credential chain", Unused: roleUnused,
		value: str{at: func(c *Config) *string { return &c.Kafka.IAMRoleARN }}},
	{Name: envKafkaIAMSessionName, Section: sectionKafka, Default: "`msk-consumer`",
		Help: "session name when assuming a role",
		value: str{at: func(c *Config) *string { return &c.Kafka.IAMSessionName }, def: DefaultIAMSessionName,
			expect: sessionNameExpect}},
	{Name: envKafkaClientID, Section: sectionKafka, Default: "`msk-consumer`",
		Help: "Kafka client id",
		value: str{at: func(c *Config) *string { return &c.Kafka.ClientID }, def: DefaultClientID,
			required: "required: a Kafka client id"}},
	{Name: envKafkaStartOffset, Section: sectionKafka, Default: "`earliest`",
		Help:  "where a group with no committed offset starts: `earliest`, `latest`, or an RFC 3339 time such as `2026-11-22T11:30:00Z` (the first record at or after it; the end of a partition with none)",
		value: startOffset{at: func(c *Config) *StartOffset { return &c.Kafka.StartOffset }, def: DefaultStartOffset}},
	{Name: envKafkaSessionTimeout, Section: sectionKafka, Default: "`45s`",
		Help:  "group session timeout",
		value: duration{at: func(c *Config) *time.Duration { return &c.Kafka.SessionTimeout }, def: DefaultSessionTimeout}},
	{Name: envKafkaHeartbeat, Section: sectionKafka, Default: "`3s`",
		Help:  "group heartbeat interval (less than the session timeout)",
		value: duration{at: func(c *Config) *time.Duration { return &c.Kafka.HeartbeatInterval }, def: DefaultHeartbeatInterval}},
	{Name: envKafkaRebalanceTimeout, Section: sectionKafka, Default: "`60s`",
		Help:  "time members get to finish in-flight work on a rebalance",
		value: duration{at: func(c *Config) *time.Duration { return &c.Kafka.RebalanceTimeout }, def: DefaultRebalanceTimeout}},
	{Name: envKafkaInstanceID, Section: sectionKafka, Default: "unset",
		Help: "static membership id (e.g. the pod name of a StatefulSet)", Unused: shareUnused,
		value: str{at: func(c *Config) *string { return &c.Kafka.InstanceID }, expect: instanceIDExpect}},
	{Name: envKafkaGroupProtocol, Section: sectionKafka, Default: "`classic`",
		Help:  "`classic` or `consumer` (KIP-848: the brokers assign the partitions and set the session timeout and heartbeat interval; Kafka 4.0+, recommended on 4.3+; [Group protocol](#group-protocol))",
		value: choice[GroupProtocol]{at: func(c *Config) *GroupProtocol { return &c.Kafka.GroupProtocol }, def: DefaultGroupProtocol, choices: groupProtos}},
	{Name: envKafkaGroupType, Section: sectionKafka, Default: "`consumer`",
		Help:  "`consumer` (a consumer group: partitions assigned to members, offsets committed) or `share` (a share group, KIP-932, Kafka 4.2+; on MSK, Standard brokers on 4.2+: the brokers hand records to any member, each acknowledged on its own, so members can outnumber partitions; see [Share groups](#share-groups))",
		value: choice[GroupType]{at: func(c *Config) *GroupType { return &c.Kafka.GroupType }, def: DefaultGroupType, choices: groupTypes}},
	{Name: envStartupTimeout, Section: sectionKafka, Default: "`2m`",
		Help:  "reach the brokers, check the topics and join the group within this, or exit 1 naming what was not reached",
		value: duration{at: func(c *Config) *time.Duration { return &c.Kafka.StartupTimeout }, def: DefaultStartupTimeout}},
	{Name: envKafkaCommitInterval, Section: sectionKafka, Default: "`5s`", Extension: true,
		Help:  "how often marked offsets are committed",
		value: duration{at: func(c *Config) *time.Duration { return &c.Kafka.CommitInterval }, def: DefaultCommitInterval}},

	// Batching and processing.
	{Name: envBatchMaxRecords, Section: sectionBatch, Default: "`500`",
		Help:  "a batch is handed over when it holds this many records",
		value: number[int]{at: func(c *Config) *int { return &c.Batch.MaxRecords }, def: DefaultBatchMaxRecords}},
	{Name: envBatchMaxBytes, Section: sectionBatch, Default: "`4194304`",
		Help:  "... or this many bytes of key+value (a single larger record is a batch of its own) ...",
		value: number[int]{at: func(c *Config) *int { return &c.Batch.MaxBytes }, def: DefaultBatchMaxBytes}},
	{Name: envBatchMaxWait, Section: sectionBatch, Default: "`3s`",
		Help:  "... or when its oldest record has waited this long since it was fetched",
		value: duration{at: func(c *Config) *time.Duration { return &c.Batch.MaxWait }, def: DefaultBatchMaxWait}},
	{Name: envMaxInFlightBatches, Section: sectionBatch, Default: "`16`",
		Help:  "batches being handled at once, across partitions",
		value: number[int]{at: func(c *Config) *int { return &c.Batch.MaxInFlight }, def: DefaultMaxInFlightBatches}},
	{Name: envMaxBufferedBytes, Section: sectionBatch, Default: "`67108864`",
		Help:  "fetched but unfinished bytes (keys and values, plus 256 bytes of bookkeeping per record); above it fetching pauses (at least `BATCH_MAX_BYTES`)",
		value: number[int64]{at: func(c *Config) *int64 { return &c.Batch.MaxBufferedBytes }, def: DefaultMaxBufferedBytes}},
	{Name: envHandlerMaxAttempts, Section: sectionBatch, Default: "`3`",
		Help:  "attempts for a failing record before it is dead-lettered",
		value: number[int]{at: func(c *Config) *int { return &c.Batch.HandlerMaxAttempts }, def: DefaultHandlerMaxAttempts}},
	{Name: envHandlerRetryBackoff, Section: sectionBatch, Default: "`200ms`",
		Help:  "first retry delay; doubles each attempt, jittered into [d/2, d]",
		value: duration{at: func(c *Config) *time.Duration { return &c.Batch.HandlerRetryBackoff }, def: DefaultHandlerRetryBackoff}},
	{Name: envHandlerBackoffMax, Section: sectionBatch, Default: "`10s`",
		Help:  "cap of the retry delay (also for dead-letter writes)",
		value: duration{at: func(c *Config) *time.Duration { return &c.Batch.HandlerBackoffMax }, def: DefaultHandlerBackoffMax}},
	{Name: envHandlerMaxRecordAge, Section: sectionBatch, Default: "unset (no limit)",
		Help:  "a record older than this (by its timestamp) whose handling fails for any reason is dead-lettered as `expired`; if set, a duration > 0 (`0s` is refused rather than read as \"no limit\"); `consumer config` prints it empty when unset",
		value: duration{at: func(c *Config) *time.Duration { return &c.Batch.HandlerMaxRecordAge }, optional: true}},
	{Name: envProcessingOrder, Section: sectionBatch, Default: "`partition`",
		Help: "`partition` (a partition's batches one after another, in offset order), `key` (records of one key in offset order, different keys of a partition concurrently), `none` (no order within a partition: for idempotent sinks); see [What it guarantees](#what-it-guarantees); with `KAFKA_GROUP_TYPE=share` unset means `none`, and only `none` is allowed",
		value: choice[Order]{at: func(c *Config) *Order { return &c.Batch.Order }, def: DefaultProcessingOrder, choices: orders,
			defFor:   func(c *Config) Order { return orderFor(c.Kafka.GroupType) },
			explicit: func(c *Config) *bool { return &c.Batch.OrderExplicit }}},
	{Name: envPartitionLanes, Section: sectionBatch, Default: "`8`",
		Help:  "lanes per partition with `key` or `none` (ignored with `partition`): a record's lane is a hash of its key (with `none`, of its offset; with `key`, a null key hashes as its offset); each lane cuts its own batches by `BATCH_MAX_*`, and hands over what it holds as soon as the partition's lanes hold a batch's worth together (`BATCH_MAX_RECORDS` or `BATCH_MAX_BYTES`); `MAX_IN_FLIGHT_BATCHES` bounds the batches in flight across all partitions and lanes",
		value: number[int]{at: func(c *Config) *int { return &c.Batch.Lanes }, def: DefaultPartitionLanes}},
	{Name: envShutdownTimeout, Section: sectionBatch, Default: "`30s`",
		Help:  "on SIGTERM: stop fetching, finish in-flight batches, commit, leave the group, within this time",
		value: duration{at: func(c *Config) *time.Duration { return &c.Batch.ShutdownTimeout }, def: DefaultShutdownTimeout}},

	// Decoding.
	{Name: envValueFormat, Section: sectionDecoding, Default: "`json`",
		Help:  "`json`, `avro`, `protobuf`, `string`, `bytes`, `int` (4-byte big-endian), `long` (8-byte big-endian)",
		value: choice[Format]{at: func(c *Config) *Format { return &c.Value.Format }, def: DefaultValueFormat, choices: formats}},
	{Name: envKeyFormat, Section: sectionDecoding, Default: "`string`",
		Help:  "same choices",
		value: choice[Format]{at: func(c *Config) *Format { return &c.Key.Format }, def: DefaultKeyFormat, choices: formats}},
	{Name: envValueSchemaFile, Section: sectionDecoding, Default: "unset",
		Help:   "Avro: an `.avsc` file (the writer schema without a registry, the reader schema with one). Protobuf: a binary `FileDescriptorSet` (`protoc --descriptor_set_out` / `buf build -o`); optional with a registry",
		Unused: func(c *Config) string { return schemaFileUnused("VALUE_", c.Value) },
		value:  str{at: func(c *Config) *string { return &c.Value.SchemaFile }, expect: readableFile}},
	{Name: envKeySchemaFile, Section: sectionDecoding, SameRow: " / ",
		Unused: func(c *Config) string { return schemaFileUnused("KEY_", c.Key) },
		value:  str{at: func(c *Config) *string { return &c.Key.SchemaFile }, expect: readableFile}},
	{Name: envValueProtoMessage, Section: sectionDecoding, Default: "unset",
		Help:   "Protobuf: the full message name in that set (with a registry and no set, the framing's message indexes name it)",
		Unused: func(c *Config) string { return protoMessageUnused("VALUE_", c.Value) },
		value:  str{at: func(c *Config) *string { return &c.Value.ProtoMessage }}},
	{Name: envKeyProtoMessage, Section: sectionDecoding, SameRow: " / ",
		Unused: func(c *Config) string { return protoMessageUnused("KEY_", c.Key) },
		value:  str{at: func(c *Config) *string { return &c.Key.ProtoMessage }}},
	{Name: envValueSchemaRegistry, Section: sectionDecoding, Default: "`none`",
		Help:  "`confluent` or `glue` framing; the schema is fetched from the registry and cached",
		value: choice[Registry]{at: func(c *Config) *Registry { return &c.Value.Registry }, def: RegistryNone, choices: registries}},
	{Name: envKeySchemaRegistry, Section: sectionDecoding, SameRow: " / ",
		value: choice[Registry]{at: func(c *Config) *Registry { return &c.Key.Registry }, def: RegistryNone, choices: registries}},
	{Name: envSchemaRegistryURL, Section: sectionDecoding, Default: "unset",
		Help:  "Confluent-compatible registry",
		value: str{at: func(c *Config) *string { return &c.Registry.URL }, expect: httpURLExpect}},
	{Name: envSchemaRegistryUser, Section: sectionDecoding, Default: "unset",
		Help:  "basic auth for it",
		value: str{at: func(c *Config) *string { return &c.Registry.Username }}},
	{Name: envSchemaRegistryPass, Section: sectionDecoding, SameRow: ", ", Secret: true,
		value: str{at: func(c *Config) *string { return &c.Registry.Password }}},

	// Handler.
	{Name: envHandler, Section: sectionHandler, Default: "`log`",
		Help: "`log`, `http`, `lambda` (invoke an AWS Lambda function with the MSK event: [Lambda functions as handlers](#lambda-functions-as-handlers)), `discard`, or the name of a Go handler compiled into the binary (`example` ships)",
		value: choice[string]{at: func(c *Config) *string { return &c.Handler.Name }, def: DefaultHandler,
			choices: builtins, caseSensitive: true, orHandlers: true}},
	{Name: envHTTPHandlerURL, Section: sectionHandler, Default: "unset",
		Help:  "required with `http`",
		value: str{at: func(c *Config) *string { return &c.Handler.HTTPURL }, expect: httpURLExpect}},
	{Name: envHTTPHandlerTimeout, Section: sectionHandler, Default: "`30s`",
		Help:  "per request",
		value: duration{at: func(c *Config) *time.Duration { return &c.Handler.HTTPTimeout }, def: DefaultHTTPHandlerTimeout}},
	{Name: envHTTPHandlerAuth, Section: sectionHandler, Default: "unset", Secret: true,
		Help:  "sent as the `Authorization` header (a secret: never logged or printed)",
		value: str{at: func(c *Config) *string { return &c.Handler.HTTPAuth }, expect: headerValueExpect}},
	{Name: envHTTPHandlerBody, Section: sectionHandler, Default: "`batch`",
		Help:  "`batch` (the body below) or `msk` (the Lambda MSK event, exactly as `lambda` sends it, so that a handler written for Lambda runs behind any HTTP server)",
		value: choice[HTTPBody]{at: func(c *Config) *HTTPBody { return &c.Handler.HTTPBody }, def: DefaultHTTPHandlerBody, choices: httpBodies}},
	{Name: envLambdaFunction, Section: sectionHandler, Default: "unset", Unused: lambdaUnused,
		Help:  "required with `lambda`: a function name, ARN or partial ARN, optionally with `:alias` or `:version`",
		value: str{at: func(c *Config) *string { return &c.Handler.LambdaFunction }}},
	{Name: envLambdaTimeout, Section: sectionHandler, Default: "`15m`",
		Help:  "per invocation (Lambda's longest function timeout; set it just above the function's own)",
		value: duration{at: func(c *Config) *time.Duration { return &c.Handler.LambdaTimeout }, def: DefaultLambdaInvokeTimeout}},
	{Name: envEventRecordFormat, Section: sectionHandler, Default: "`source`",
		Help:  "for `lambda` and `HTTP_HANDLER_BODY=msk`: `source` (each key and value as its original bytes, base64, as the event source mapping delivers them without schema registry integration) or `json` (decoded by `KEY_FORMAT`/`VALUE_FORMAT` and delivered as JSON, base64, with `keySchemaMetadata`/`valueSchemaMetadata` where a registry framed them, as the mapping's `EventRecordFormat: JSON` does)",
		value: choice[RecordFormat]{at: func(c *Config) *RecordFormat { return &c.Handler.EventRecordFormat }, def: DefaultEventRecordFormat, choices: recFormats}},
	{Name: envKafkaClusterARN, Section: sectionHandler, Default: "unset", Unused: eventUnused,
		Help:  "the MSK cluster's ARN: the event's `eventSourceArn`, with `eventSource` `aws:kafka`; unset, the event says `SelfManagedKafka`",
		value: str{at: func(c *Config) *string { return &c.Handler.KafkaClusterARN }}},

	// Dead-letter topic.
	{Name: envDLQTopic, Section: sectionDLQ, Default: "`<source topic>.dlq`",
		Help:  "where records that cannot be handled go; with several source topics and no `DLQ_TOPIC`, each has its own `<topic>.dlq`. Every dead-letter topic must exist at start (exit 1 naming it if not)",
		Print: printDLQ,
		value: str{at: func(c *Config) *string { return &c.DLQ.Topic }, expect: dlqTopicExpect}},

	// Idempotency.
	{Name: envIdempotencyStore, Section: sectionIdem, Default: "`none`",
		Help:  "`none`, `redis` (Redis or Valkey 7+, e.g. ElastiCache), `dynamodb`: a store shared by the group's members in which each record is looked up before the handler and marked completed after it, so that a redelivered record is not handled again ([Idempotent handling](#idempotent-handling))",
		value: choice[IdempotencyStore]{at: func(c *Config) *IdempotencyStore { return &c.Idempotency.Store }, def: DefaultIdempotencyStore, choices: idemStores}},
	{Name: envIdempotencyTTL, Section: sectionIdem, Default: "`24h`",
		Help:  "how long a completed record is remembered; a redelivery after that is handled again",
		value: duration{at: func(c *Config) *time.Duration { return &c.Idempotency.TTL }, def: DefaultIdempotencyTTL}},
	{Name: envIdempotencyKey, Section: sectionIdem, Default: "`offset`",
		Help: "`offset` (topic, partition and offset) or `header:NAME` (the value of the record header NAME, e.g. a message id the producer set; a record without it is handled without the check, counted by `consumer_idempotency_unkeyed_records_total`)",
		value: str{at: func(c *Config) *string { return &c.Idempotency.Key }, def: DefaultIdempotencyKey,
			expect: idemKeyExpect}},
	{Name: envIdempotencyKeyPrefix, Section: sectionIdem, Default: "`KAFKA_GROUP_ID`",
		Help: "starts every key, so that groups and environments sharing a store never meet", Unused: idemUnused,
		Print: func(c *Config) string {
			return printDefaulted(c.Idempotency.KeyPrefix, c.IdempotencyPrefix(), "the group id")
		},
		value: str{at: func(c *Config) *string { return &c.Idempotency.KeyPrefix }}},
	{Name: envIdempotencyInProgress, Section: sectionIdem, Default: "`HTTP_HANDLER_TIMEOUT` + `10s`",
		Help: "how long a claim on a record lasts unless renewed: a batch in flight renews its claims every third of it, however long it takes, so another member waits that long for the records of a member that died (or lost the store); less than `IDEMPOTENCY_TTL`", Unused: idemUnused,
		Print: func(c *Config) string {
			return printDefaulted(durationOrEmpty(c.Idempotency.InProgressTTL), c.IdempotencyInProgressTTL().String(), "HTTP_HANDLER_TIMEOUT + 10s")
		},
		value: duration{at: func(c *Config) *time.Duration { return &c.Idempotency.InProgressTTL }, optional: true}},
	{Name: envRedisURL, Section: sectionIdem, Default: "unset",
		Help:   "with `redis`: `redis://` or, for TLS, `rediss://`, with user and password (ACL) and the database, e.g. `rediss://consumer:PASSWORD@master.example.cache.amazonaws.com:6379/0`; the password is a secret (printed as `xxxxx`)",
		Unused: func(c *Config) string { return storeUnused(c, StoreRedis) },
		value:  str{at: func(c *Config) *string { return &c.Idempotency.RedisURL }, expect: redisURLExpect}},
	{Name: envIdempotencyTable, Section: sectionIdem, Default: "unset",
		Help:   "with `dynamodb`: the table (`deploy/dynamodb`), reached with the AWS default credential chain, `AWS_REGION` and endpoint settings such as `AWS_ENDPOINT_URL_DYNAMODB`",
		Unused: func(c *Config) string { return storeUnused(c, StoreDynamoDB) },
		value:  str{at: func(c *Config) *string { return &c.Idempotency.Table }, expect: tableExpect}},

	// Operations.
	{Name: envMetricsAddr, Section: sectionOps, Default: "`:9090`",
		Help: "serves `/metrics`, `/healthz`, `/readyz`",
		value: str{at: func(c *Config) *string { return &c.Ops.MetricsAddr }, def: DefaultMetricsAddr,
			required: "required: a listen address host:port, such as :9090", expect: listenAddrExpect}},
	{Name: envLogLevel, Section: sectionOps, Default: "`info`",
		Help:  "`debug`, `info`, `warn`, `error`",
		value: choice[string]{at: func(c *Config) *string { return &c.Ops.LogLevel }, def: DefaultLogLevel, choices: logLevels}},
	{Name: envLogFormat, Section: sectionOps, Default: "`json`",
		Help:  "`json` or `console`",
		value: choice[LogFormat]{at: func(c *Config) *LogFormat { return &c.Ops.LogFormat }, def: DefaultLogFormat, choices: logFormats}},
	{Name: envUnreadyAfter, Section: sectionOps, Default: "`30s`", Extension: true,
		Help:  "how long a condition (a partition stuck on the dead-letter topic, a schema registry or the idempotency store, an unavailable handler, brokers unreachable, group errors, a handler call that has not returned) may last before `/readyz` answers 503. A Go handler has no timeout of its own: a call of it in flight for longer than `UNREADY_AFTER` is such a condition, named with its topic, partition and lane; the HTTP handler's calls end at `HTTP_HANDLER_TIMEOUT` and count from there",
		value: duration{at: func(c *Config) *time.Duration { return &c.Ops.UnreadyAfter }, def: DefaultUnreadyAfter}},

	// Tracing: the OpenTelemetry SDK's variables. Set with
	// OTEL_TRACES_EXPORTER=none, they are read but not checked (whenTracing).
	{Name: envOTELTracesExporter, Section: sectionTracing, Default: "`none`",
		Help:  "`none` (no spans, no cost), `otlp` (to a collector: [Traces](#traces)), `console` (one JSON document per span on stdout)",
		value: choice[TracesExporter]{at: func(c *Config) *TracesExporter { return &c.Tracing.Exporter }, def: DefaultTracesExporter, choices: exporters}},
	{Name: envOTELEndpoint, Section: sectionTracing, Default: "unset: `http://localhost:4318` (`4317` with `grpc`)",
		Help: "the collector's base URL; `/v1/traces` is appended for HTTP", Print: printEndpoint,
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.Endpoint }, expect: otlpEndpointExpect}}},
	{Name: envOTELTracesEndpoint, Section: sectionTracing, Default: "unset",
		Help: "the whole URL of the traces endpoint, used as it is; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`", Print: func(c *Config) string { return RedactURL(c.Tracing.TracesEndpoint) },
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.TracesEndpoint }, expect: otlpEndpointExpect}}},
	{Name: envOTELProtocol, Section: sectionTracing, Default: "`http/protobuf`",
		Help:  "`http/protobuf`, `http/json` or `grpc`",
		value: whenTracing{choice[OTLPProtocol]{at: func(c *Config) *OTLPProtocol { return &c.Tracing.Protocol }, def: DefaultOTLPProtocol, choices: protocols}}},
	{Name: envOTELTracesProtocol, Section: sectionTracing, Default: "unset",
		Help:  "the same for traces; wins over `OTEL_EXPORTER_OTLP_PROTOCOL`",
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.TracesProtocol }, expect: protocolExpect}}},
	{Name: envOTELHeaders, Section: sectionTracing, Default: "unset",
		Help: "headers of every export request, `key=value,...` with percent-encoded values, e.g. `x-honeycomb-team=KEY` (a secret: never logged or printed); the `TRACES_` one wins key by key", Secret: true,
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.Headers }, expect: keyValuesExpect}}},
	{Name: envOTELTracesHeaders, Section: sectionTracing, SameRow: ", ", Secret: true,
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.TracesHeaders }, expect: keyValuesExpect}}},
	{Name: envOTELServiceName, Section: sectionTracing, Default: "`msk-consumer`",
		Help: "`service.name` of the spans (wins over one in `OTEL_RESOURCE_ATTRIBUTES`)",
		Print: func(c *Config) string {
			return printDefaulted(c.Tracing.ServiceName, c.Tracing.Service(), "service.name of OTEL_RESOURCE_ATTRIBUTES, else msk-consumer")
		},
		value: str{at: func(c *Config) *string { return &c.Tracing.ServiceName }}},
	{Name: envOTELResourceAttributes, Section: sectionTracing, Default: "unset",
		Help:  "more resource attributes, `key=value,...` with percent-encoded values, e.g. `deployment.environment.name=prod`; they win over what the ECS and EKS detectors find",
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.ResourceAttributes }, expect: keyValuesExpect}}},
	{Name: envOTELTracesSampler, Section: sectionTracing, Default: "`parentbased_always_on`",
		Help:  "`parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`, `always_on`, `always_off`, `traceidratio`; a batch of one record follows its producer's sampling decision with the `parentbased_*` ones, a larger batch is a root",
		value: whenTracing{choice[Sampler]{at: func(c *Config) *Sampler { return &c.Tracing.Sampler }, def: DefaultTracesSampler, choices: samplers}}},
	{Name: envOTELTracesSamplerArg, Section: sectionTracing, Default: "unset (`1`)",
		Help:  "the ratio of the `*traceidratio` samplers, from 0 to 1",
		value: whenTracing{str{at: func(c *Config) *string { return &c.Tracing.SamplerArg }, expect: ratioExpect}}},
	{Name: envOTELPropagators, Section: sectionTracing, Default: "unset (`tracecontext`)",
		Help:  "how the span context travels to the HTTP handler's requests and is read from records: `tracecontext` (W3C `traceparent`, `tracestate`), `baggage` (W3C `baggage`, forwarded to the HTTP handler), `none`; comma-separated",
		value: whenTracing{list{at: func(c *Config) *[]string { return &c.Tracing.Propagators }, expect: propagatorExpect}}},
	{Name: envOTELSDKDisabled, Section: sectionTracing, Default: "`false`",
		Help:  "`true`: no tracing, whatever `OTEL_TRACES_EXPORTER` says",
		value: boolean{at: func(c *Config) *bool { return &c.Tracing.Disabled }}},
}

// tlsOff is the Unused rule of the TLS settings.
func tlsOff(c *Config) string {
	if c.Kafka.TLS {
		return ""
	}
	return "set, but TLS is off (KAFKA_TLS=true uses it); ignored"
}

// shareUnused is the Unused rule of the consumer group's own settings that
// a share group has no use for.
func shareUnused(c *Config) string {
	if c.Kafka.GroupType == GroupTypeShare {
		return unusedBy("KAFKA_GROUP_TYPE=share", "KAFKA_GROUP_TYPE=consumer")
	}
	return ""
}

// orderFor is PROCESSING_ORDER's default: a share group has no order to
// keep.
func orderFor(t GroupType) Order {
	if t == GroupTypeShare {
		return OrderNone
	}
	return DefaultProcessingOrder
}

// unusedBy is the warning of a variable that setting makes unused: "set,
// but KAFKA_AUTH=iam does not use it (KAFKA_AUTH=plain does); ignored".
func unusedBy(setting, usedBy string) string {
	return "set, but " + setting + " does not use it (" + usedBy + " does); ignored"
}

// lambdaUnused is the Unused rule of LAMBDA_FUNCTION_NAME.
func lambdaUnused(c *Config) string {
	if c.Handler.Name == HandlerLambda {
		return ""
	}
	return unusedBy("HANDLER="+c.Handler.Name, "HANDLER=lambda")
}

// eventUnused is the Unused rule of what only the MSK event uses.
func eventUnused(c *Config) string {
	if c.Handler.Name == HandlerLambda || (c.Handler.Name == HandlerHTTP && c.Handler.HTTPBody == BodyMSK) {
		return ""
	}
	return "set, but only HANDLER=lambda and HANDLER=http with HTTP_HANDLER_BODY=msk send the MSK event; ignored"
}

// saslUnused is the Unused rule of the SASL credentials. Credentials that
// would be silently ignored usually mean KAFKA_AUTH was forgotten; failing
// now beats an authentication error later.
func saslUnused(c *Config) string {
	if a := c.Kafka.Auth; a == AuthIAM || a == AuthNone {
		return unusedBy("KAFKA_AUTH="+string(a), "KAFKA_AUTH="+oneOf(saslAuths...))
	}
	return ""
}

// roleUnused is the Unused rule of KAFKA_IAM_ROLE_ARN. An invalid
// KAFKA_AUTH is reported on its own; the role is checked then.
func roleUnused(c *Config) string {
	if a := c.Kafka.Auth; a == AuthNone || slices.Contains(saslAuths, a) {
		return unusedBy("KAFKA_AUTH="+string(a), "KAFKA_AUTH=iam")
	}
	return ""
}

// schemaFileUnused is the Unused rule of a side's schema file; prefix is
// "KEY_" or "VALUE_". An invalid format is reported on its own.
func schemaFileUnused(prefix string, cd Codec) string {
	if !slices.Contains(formats, cd.Format) || cd.Format == FormatAvro || cd.Format == FormatProtobuf {
		return ""
	}
	return "set, but " + prefix + "FORMAT=" + string(cd.Format) + " does not use a schema file (" + prefix + "FORMAT=avro or protobuf does); ignored"
}

// protoMessageUnused is the Unused rule of a side's Protobuf message.
func protoMessageUnused(prefix string, cd Codec) string {
	if !slices.Contains(formats, cd.Format) || cd.Format == FormatProtobuf {
		return ""
	}
	return unusedBy(prefix+"FORMAT="+string(cd.Format), prefix+"FORMAT=protobuf")
}

// idemUnused is the Unused rule of the settings of every store.
func idemUnused(c *Config) string {
	if c.Idempotency.Enabled() {
		return ""
	}
	return unusedBy("IDEMPOTENCY_STORE="+string(c.Idempotency.Store), "IDEMPOTENCY_STORE="+oneOf(idemStores[1:]...))
}

// storeUnused is the Unused rule of one store's own settings.
func storeUnused(c *Config, s IdempotencyStore) string {
	if c.Idempotency.Store == s {
		return ""
	}
	return unusedBy("IDEMPOTENCY_STORE="+string(c.Idempotency.Store), "IDEMPOTENCY_STORE="+string(s))
}

// printDefaulted prints a value that is unset by default as its effective
// value, saying where it comes from in a trailing comment.
func printDefaulted(set, effective, from string) string {
	if set != "" || effective == "" {
		return set
	}
	return effective + "  # unset: " + from
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// printDLQ lists each topic's default dead-letter topic when DLQ_TOPIC is
// unset, and says so in a trailing comment.
func printDLQ(c *Config) string {
	if c.DLQ.Topic != "" || len(c.Kafka.Topics) == 0 {
		return c.DLQ.Topic
	}
	dlqs := make([]string, len(c.Kafka.Topics))
	for i, t := range c.Kafka.Topics {
		dlqs[i] = c.DLQ.TopicFor(t)
	}
	return strings.Join(dlqs, ",") + "  # unset: each topic dead-letters to <topic>" + DefaultDLQSuffix
}

// varOrder is the names of variables, in order.
var varOrder = func() []string {
	names := make([]string, len(variables))
	for i, v := range variables {
		names[i] = v.Name
	}
	return names
}()

// varIndex is a variable's position in the table; unknown names, and a
// Fallback, sort last.
func varIndex(name string) int {
	if i := slices.Index(varOrder, name); i >= 0 {
		return i
	}
	return len(varOrder)
}

// lookupVar returns the table's entry for name, or nil.
func lookupVar(name string) *variable {
	if i := varIndex(name); i < len(variables) {
		return &variables[i]
	}
	return nil
}

// isSecret reports whether a variable's value must never be printed.
func isSecret(name string) bool {
	v := lookupVar(name)
	return v != nil && v.Secret
}

// isURLVar reports whether a variable holds a URL whose secrets (a userinfo
// password, query values, a fragment) must be redacted wherever the value
// is shown (RedactURL): every *_URL variable, and nothing else.
func isURLVar(name string) bool { return strings.HasSuffix(name, "_URL") }
