// Package config reads and validates the service's configuration from
// environment variables, as named in the operator contract. Each variable
// is one entry of a table (vars.go) that Load, Validate, Print, CheckNames
// and the README's reference (Reference, make docs) are driven by. It holds
// no Kafka client code: turning a Config into client options is done by
// internal/consume.
package config

import (
	"slices"
	"strings"
	"time"
)

// Auth is the mechanism used to authenticate to the brokers.
type Auth string

// The values of KAFKA_AUTH.
const (
	AuthIAM         Auth = "iam"
	AuthSCRAMSHA512 Auth = "scram-sha-512"
	AuthSCRAMSHA256 Auth = "scram-sha-256"
	AuthPlain       Auth = "plain"
	AuthNone        Auth = "none"
)

// StartOffset is where a group with no committed offset starts.
type StartOffset string

// The values of KAFKA_START_OFFSET.
const (
	StartEarliest StartOffset = "earliest"
	StartLatest   StartOffset = "latest"
)

// GroupProtocol is the consumer group protocol the member joins with.
type GroupProtocol string

// The values of KAFKA_GROUP_PROTOCOL.
const (
	// GroupClassic is the classic protocol: the members assign the
	// partitions among themselves (cooperative-sticky), with the session
	// timeout and heartbeat interval the member asks for.
	GroupClassic GroupProtocol = "classic"
	// GroupConsumer is KIP-848's protocol (Kafka 4.0+): the broker's group
	// coordinator assigns the partitions and sets the session timeout and
	// heartbeat interval.
	GroupConsumer GroupProtocol = "consumer"
)

// GroupType is KAFKA_GROUP_TYPE: the kind of group the service joins.
type GroupType string

// The values of KAFKA_GROUP_TYPE.
const (
	// GroupTypeConsumer is a consumer group: partitions are assigned to
	// members and offsets committed.
	GroupTypeConsumer GroupType = "consumer"
	// GroupTypeShare is a share group (KIP-932, Kafka 4.2+): the brokers
	// hand records to any member and each is acknowledged on its own.
	GroupTypeShare GroupType = "share"
)

// Order is PROCESSING_ORDER: which records of a partition may be handled
// concurrently.
type Order string

// The values of PROCESSING_ORDER.
const (
	// OrderPartition handles a partition's batches one after another, in
	// offset order.
	OrderPartition Order = "partition"
	// OrderKey handles records of one key in offset order, and different
	// keys of a partition concurrently (PARTITION_CONCURRENCY lanes, a
	// record's lane by the hash of its key).
	OrderKey Order = "key"
	// OrderNone handles a partition's records in PARTITION_CONCURRENCY
	// lanes with no order between them.
	OrderNone Order = "none"
)

// Format is how a key or a value is decoded.
type Format string

// The values of KEY_FORMAT and VALUE_FORMAT.
const (
	FormatJSON     Format = "json"
	FormatAvro     Format = "avro"
	FormatProtobuf Format = "protobuf"
	FormatString   Format = "string"
	FormatBytes    Format = "bytes"
	FormatInt      Format = "int"
	FormatLong     Format = "long"
)

// Registry is the framing of a key or value written through a schema
// registry.
type Registry string

// The values of KEY_SCHEMA_REGISTRY and VALUE_SCHEMA_REGISTRY.
const (
	RegistryNone      Registry = "none"
	RegistryConfluent Registry = "confluent"
	RegistryGlue      Registry = "glue"
)

// IdempotencyStore is where the idempotency check keeps record keys.
type IdempotencyStore string

// The values of IDEMPOTENCY_STORE.
const (
	StoreNone     IdempotencyStore = "none"
	StoreRedis    IdempotencyStore = "redis"
	StoreDynamoDB IdempotencyStore = "dynamodb"
)

// The values of IDEMPOTENCY_KEY: KeyOffset, or KeyHeaderPrefix followed
// by a header name.
const (
	KeyOffset       = "offset"
	KeyHeaderPrefix = "header:"
)

// LogFormat is the encoding of log lines.
type LogFormat string

// The values of LOG_FORMAT.
const (
	LogJSON    LogFormat = "json"
	LogConsole LogFormat = "console"
)

// Built-in handler names (HANDLER). Any other name must be a handler
// compiled into the binary.
const (
	HandlerLog     = "log"
	HandlerHTTP    = "http"
	HandlerDiscard = "discard"
	HandlerLambda  = "lambda"
)

// Defaults, as given by the operator contract.
const (
	DefaultAuth                = AuthIAM
	DefaultIAMSessionName      = "msk-consumer"
	DefaultClientID            = "msk-consumer"
	DefaultStartOffset         = StartEarliest
	DefaultSessionTimeout      = 45 * time.Second
	DefaultHeartbeatInterval   = 3 * time.Second
	DefaultRebalanceTimeout    = 60 * time.Second
	DefaultGroupProtocol       = GroupClassic
	DefaultGroupType           = GroupTypeConsumer
	DefaultCommitInterval      = 5 * time.Second
	DefaultStartupTimeout      = 2 * time.Minute
	DefaultBatchMaxRecords     = 500
	DefaultBatchMaxBytes       = 4194304
	DefaultBatchMaxWait        = 3 * time.Second
	DefaultMaxInFlightBatches  = 16
	DefaultMaxBufferedBytes    = 67108864
	DefaultHandlerMaxAttempts  = 3
	DefaultHandlerRetryBackoff = 200 * time.Millisecond
	DefaultHandlerBackoffMax   = 10 * time.Second
	DefaultShutdownTimeout     = 30 * time.Second
	DefaultProcessingOrder     = OrderPartition
	DefaultPartitionLanes      = 8
	DefaultValueFormat         = FormatJSON
	DefaultKeyFormat           = FormatString
	DefaultHandler             = HandlerLog
	DefaultHTTPHandlerTimeout  = 30 * time.Second
	DefaultLambdaInvokeTimeout = 15 * time.Minute
	DefaultHTTPHandlerBody     = BodyBatch
	DefaultEventRecordFormat   = RecordSource
	DefaultMetricsAddr         = ":9090"
	DefaultLogLevel            = "info"
	DefaultLogFormat           = LogJSON
	DefaultUnreadyAfter        = 30 * time.Second
	DefaultDLQSuffix           = ".dlq"
	DefaultIdempotencyStore    = StoreNone
	DefaultIdempotencyTTL      = 24 * time.Hour
	DefaultIdempotencyKey      = KeyOffset
	// DefaultInProgressMargin is added to HTTP_HANDLER_TIMEOUT for the
	// default IDEMPOTENCY_IN_PROGRESS_TTL.
	DefaultInProgressMargin = 10 * time.Second
)

// Config is the whole effective configuration. Load fills it from the
// environment; Validate reports every invalid field at once.
type Config struct {
	Kafka       Kafka
	Batch       Batch
	Key         Codec
	Value       Codec
	Registry    SchemaRegistry
	Handler     Handler
	DLQ         DLQ
	Idempotency Idempotency
	Ops         Ops
	Tracing     Tracing
}

// Kafka is the connection, group and TLS/SASL configuration.
type Kafka struct {
	Brokers []string // KAFKA_BROKERS
	Topics  []string // KAFKA_TOPICS
	GroupID string   // KAFKA_GROUP_ID

	Auth Auth // KAFKA_AUTH

	TLS                   bool   // KAFKA_TLS
	TLSExplicit           bool   // whether KAFKA_TLS was set
	TLSCAFile             string // KAFKA_TLS_CA_FILE
	TLSCertFile           string // KAFKA_TLS_CERT_FILE
	TLSKeyFile            string // KAFKA_TLS_KEY_FILE
	TLSServerName         string // KAFKA_TLS_SERVER_NAME
	TLSInsecureSkipVerify bool   // KAFKA_TLS_INSECURE_SKIP_VERIFY

	SASLUsername string // KAFKA_SASL_USERNAME
	SASLPassword string // KAFKA_SASL_PASSWORD (secret)

	AWSRegion      string // AWS_REGION, else AWS_DEFAULT_REGION
	IAMRoleARN     string // KAFKA_IAM_ROLE_ARN
	IAMSessionName string // KAFKA_IAM_SESSION_NAME

	ClientID          string        // KAFKA_CLIENT_ID
	StartOffset       StartOffset   // KAFKA_START_OFFSET
	SessionTimeout    time.Duration // KAFKA_SESSION_TIMEOUT
	HeartbeatInterval time.Duration // KAFKA_HEARTBEAT_INTERVAL
	RebalanceTimeout  time.Duration // KAFKA_REBALANCE_TIMEOUT
	InstanceID        string        // KAFKA_INSTANCE_ID
	GroupProtocol     GroupProtocol // KAFKA_GROUP_PROTOCOL
	GroupType         GroupType     // KAFKA_GROUP_TYPE
	CommitInterval    time.Duration // KAFKA_COMMIT_INTERVAL (not in the contract; documented in the README)
	StartupTimeout    time.Duration // STARTUP_TIMEOUT
}

// Batch bounds batches and the work in flight.
type Batch struct {
	MaxRecords          int           // BATCH_MAX_RECORDS
	MaxBytes            int           // BATCH_MAX_BYTES
	MaxWait             time.Duration // BATCH_MAX_WAIT
	MaxInFlight         int           // MAX_IN_FLIGHT_BATCHES
	MaxBufferedBytes    int64         // MAX_BUFFERED_BYTES
	HandlerMaxAttempts  int           // HANDLER_MAX_ATTEMPTS
	HandlerRetryBackoff time.Duration // HANDLER_RETRY_BACKOFF
	HandlerBackoffMax   time.Duration // HANDLER_RETRY_BACKOFF_MAX
	HandlerMaxRecordAge time.Duration // HANDLER_MAX_RECORD_AGE; 0 means no limit
	Order               Order         // PROCESSING_ORDER
	OrderExplicit       bool          // whether PROCESSING_ORDER was given
	Lanes               int           // PARTITION_CONCURRENCY; used with OrderKey and OrderNone only
	ShutdownTimeout     time.Duration // SHUTDOWN_TIMEOUT
}

// Codec is how one side of a record (key or value) is decoded.
type Codec struct {
	Format       Format   // KEY_FORMAT / VALUE_FORMAT
	SchemaFile   string   // KEY_SCHEMA_FILE / VALUE_SCHEMA_FILE
	ProtoMessage string   // KEY_PROTO_MESSAGE / VALUE_PROTO_MESSAGE
	Registry     Registry // KEY_SCHEMA_REGISTRY / VALUE_SCHEMA_REGISTRY
}

// SchemaRegistry is the Confluent-compatible registry connection.
type SchemaRegistry struct {
	URL      string // SCHEMA_REGISTRY_URL
	Username string // SCHEMA_REGISTRY_USERNAME
	Password string // SCHEMA_REGISTRY_PASSWORD (secret)
}

// Handler selects and configures the batch handler.
type Handler struct {
	Name        string        // HANDLER
	HTTPURL     string        // HTTP_HANDLER_URL
	HTTPTimeout time.Duration // HTTP_HANDLER_TIMEOUT
	HTTPAuth    string        // HTTP_HANDLER_AUTH_HEADER (secret)
	HTTPBody    HTTPBody      // HTTP_HANDLER_BODY

	LambdaFunction    string        // LAMBDA_FUNCTION_NAME
	LambdaTimeout     time.Duration // LAMBDA_INVOKE_TIMEOUT
	EventRecordFormat RecordFormat  // EVENT_RECORD_FORMAT
	KafkaClusterARN   string        // KAFKA_CLUSTER_ARN
}

// EventSource is what the MSK event (HANDLER=lambda, HTTP_HANDLER_BODY=msk)
// says of the source besides the handler's variables: the bootstrap
// servers and the registry framing of keys and values; and the region the
// Lambda client uses.
type EventSource struct {
	Brokers                    []string
	KeyFormat, ValueFormat     Format
	KeyRegistry, ValueRegistry Registry
	AWSRegion                  string
}

// EventSource returns what the MSK event says of c's source.
func (c Config) EventSource() EventSource {
	return EventSource{
		Brokers:   c.Kafka.Brokers,
		KeyFormat: c.Key.Format, ValueFormat: c.Value.Format,
		KeyRegistry: c.Key.Registry, ValueRegistry: c.Value.Registry,
		AWSRegion: c.Kafka.AWSRegion,
	}
}

// HTTPBody is HTTP_HANDLER_BODY.
type HTTPBody string

// The values of HTTP_HANDLER_BODY.
const (
	BodyBatch HTTPBody = "batch"
	BodyMSK   HTTPBody = "msk"
)

// RecordFormat is EVENT_RECORD_FORMAT.
type RecordFormat string

// The values of EVENT_RECORD_FORMAT.
const (
	RecordSource RecordFormat = "source"
	RecordJSON   RecordFormat = "json"
)

// DLQ names the dead-letter topic.
type DLQ struct {
	// Topic is DLQ_TOPIC. Empty means each source topic dead-letters to
	// "<topic>.dlq"; use TopicFor.
	Topic string
}

// TopicFor returns the dead-letter topic for records of source.
func (d DLQ) TopicFor(source string) string {
	if d.Topic != "" {
		return d.Topic
	}
	return source + DefaultDLQSuffix
}

// DLQTopics returns the distinct dead-letter topics of the topics to
// consume, sorted.
func (c Config) DLQTopics() []string {
	var dlqs []string
	for _, t := range c.Kafka.Topics {
		if dt := c.DLQ.TopicFor(t); !slices.Contains(dlqs, dt) {
			dlqs = append(dlqs, dt)
		}
	}
	slices.Sort(dlqs)
	return dlqs
}

// Idempotency is the idempotency check: a store shared by the group's
// members that keeps each record's side effects to once.
type Idempotency struct {
	Store IdempotencyStore // IDEMPOTENCY_STORE
	TTL   time.Duration    // IDEMPOTENCY_TTL
	Key   string           // IDEMPOTENCY_KEY: offset or header:NAME
	// KeyPrefix is IDEMPOTENCY_KEY_PREFIX; empty means the group id: use
	// Config.IdempotencyPrefix.
	KeyPrefix string
	// InProgressTTL is IDEMPOTENCY_IN_PROGRESS_TTL; zero means
	// HTTP_HANDLER_TIMEOUT plus DefaultInProgressMargin: use
	// Config.IdempotencyInProgressTTL.
	InProgressTTL time.Duration
	RedisURL      string // REDIS_URL (its password is a secret)
	Table         string // IDEMPOTENCY_TABLE
}

// Enabled reports whether a store is configured.
func (i Idempotency) Enabled() bool { return i.Store != "" && i.Store != StoreNone }

// Header returns the header name of IDEMPOTENCY_KEY=header:NAME, or ""
// for offset keys.
func (i Idempotency) Header() string {
	name, _ := strings.CutPrefix(i.Key, KeyHeaderPrefix)
	if name == i.Key {
		return ""
	}
	return name
}

// IdempotencyPrefix is the effective IDEMPOTENCY_KEY_PREFIX.
func (c Config) IdempotencyPrefix() string {
	if c.Idempotency.KeyPrefix != "" {
		return c.Idempotency.KeyPrefix
	}
	return c.Kafka.GroupID
}

// IdempotencyInProgressTTL is the effective IDEMPOTENCY_IN_PROGRESS_TTL.
func (c Config) IdempotencyInProgressTTL() time.Duration {
	if c.Idempotency.InProgressTTL > 0 {
		return c.Idempotency.InProgressTTL
	}
	return c.Handler.HTTPTimeout + DefaultInProgressMargin
}

// Ops is metrics, health and logging.
type Ops struct {
	MetricsAddr  string        // METRICS_ADDR
	LogLevel     string        // LOG_LEVEL
	LogFormat    LogFormat     // LOG_FORMAT
	UnreadyAfter time.Duration // UNREADY_AFTER (not in the contract; documented in the README)
}
