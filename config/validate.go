package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxTopicLen is Kafka's limit on a topic name (and a group instance id).
const maxTopicLen = 249

// Validate reports every invalid field at once as Errors, sorted in the
// contract's order, or nil. It neither changes c nor dials anything; it does
// open the files the configuration names, to check that they are readable.
//
// handlerNames are the Go handlers compiled into the binary, accepted for
// HANDLER besides log, http and discard.
//
// Each variable is checked as its entry in the table says, unless it is
// set but unused (Unused: a warning, not a problem); then the rules that
// involve several variables.
func (c Config) Validate(handlerNames ...string) error {
	v := &validator{handlerNames: handlerNames}
	for i := range variables {
		vr := &variables[i]
		if vr.unused(&c) == "" {
			vr.value.check(v, vr, &c)
		}
	}
	c.validateCombinations(v)
	return asError(v.problems)
}

type validator struct {
	handlerNames []string
	problems     Errors
}

// add records a problem. The values of secrets are dropped and URL passwords
// redacted here, so no rule can leak one by mistake.
func (v *validator) add(name, value, expected string, args ...any) {
	switch {
	case isSecret(name):
		value = ""
	case isURLVar(name):
		value = RedactURL(value)
	}
	if len(args) > 0 {
		expected = fmt.Sprintf(expected, args...)
	}
	v.problems = append(v.problems, Problem{Var: name, Value: value, Expected: expected})
}

// readableFile says what is wrong with a set path that does not name a
// readable regular file, or "".
func readableFile(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return "expected a readable file: " + pathErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return "expected a readable file: " + pathErr(err)
	case fi.IsDir():
		return "expected a readable file, not a directory"
	}
	return ""
}

// pathErr drops the path from a *fs.PathError, which the problem already
// shows as its value.
func pathErr(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// oneOf formats choices as "a, b or c".
func oneOf[T ~string](choices ...T) string {
	s := make([]string, len(choices))
	for i, c := range choices {
		s[i] = string(c)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// topicProblem says what is wrong with a Kafka topic name, or "" if it is
// legal: 1 to 249 characters of [a-zA-Z0-9._-], and not "." or "..".
func topicProblem(t string) string {
	switch {
	case t == "":
		return "empty"
	case t == "." || t == "..":
		return `"." and ".." are not allowed`
	case len(t) > maxTopicLen:
		return fmt.Sprintf("%d characters, more than %d", len(t), maxTopicLen)
	}
	for _, r := range t {
		if !legalTopicRune(r) {
			return fmt.Sprintf("%q is not allowed", r)
		}
	}
	return ""
}

func legalTopicRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '.' || r == '_' || r == '-'
}

const expTopic = "expected a Kafka topic name: 1-249 characters of a-z, A-Z, 0-9, '.', '_', '-', not \".\" or \"..\""

// hostPortProblem says what is wrong with a host:port, or "" if it is valid.
// minPort is 0 where an ephemeral port makes sense (a listen address).
func hostPortProblem(addr string, hostRequired bool, minPort int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return ae.Err
		}
		return err.Error()
	}
	if hostRequired && host == "" {
		return "missing host"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Sprintf("port %q is not a number %d-65535", port, minPort)
	}
	return ""
}

// httpURLProblem says what is wrong with an absolute http(s) URL, or "".
func httpURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "does not parse"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "scheme must be http or https"
	}
	if u.Host == "" {
		return "missing host"
	}
	return ""
}

// What the variables' own checks expect, in the table's terms: each
// returns what was expected instead of the value, or "" if it is fine.

func brokerProblem(b string) string {
	if p := hostPortProblem(b, true, 1); p != "" {
		return "expected host:port with a numeric port 1-65535: " + p
	}
	return ""
}

func topicExpect(t string) string {
	if p := topicProblem(t); p != "" {
		return expTopic + ": " + p
	}
	return ""
}

// dlqTopicExpect is topicExpect for DLQ_TOPIC, which may be unset.
func dlqTopicExpect(t string) string {
	if t == "" {
		return ""
	}
	return topicExpect(t)
}

func instanceIDExpect(id string) string {
	if id == "" {
		return ""
	}
	// Kafka holds group.instance.id to the same rule as a topic name.
	if p := topicProblem(id); p != "" {
		return "expected a static member id: 1-249 characters of a-z, A-Z, 0-9, '.', '_', '-': " + p
	}
	return ""
}

func sessionNameExpect(s string) string {
	if p := sessionNameProblem(s); p != "" {
		return "expected an STS role session name: 2-64 characters of a-z, A-Z, 0-9, +=,.@_-: " + p
	}
	return ""
}

func httpURLExpect(raw string) string {
	if raw == "" {
		return ""
	}
	if p := httpURLProblem(raw); p != "" {
		return "expected an absolute http or https URL: " + p
	}
	return ""
}

func listenAddrExpect(addr string) string {
	if p := hostPortProblem(addr, false, 0); p != "" {
		return "expected a listen address host:port, such as :9090: " + p
	}
	return ""
}

func headerValueExpect(h string) string {
	if strings.ContainsAny(h, "\r\n\x00") {
		return "expected a single-line header value (check for a trailing newline)"
	}
	return ""
}

// validateCombinations applies the rules that involve several variables.
// Each variable's own checks are in the table.
func (c Config) validateCombinations(v *validator) {
	c.validateAuth(v)
	k := c.Kafka
	if !k.TLS && k.Auth != AuthNone && !k.TLSExplicit {
		v.add(envKafkaTLS, "", "SASL without TLS is refused unless KAFKA_TLS=false is set explicitly")
	}
	if (k.TLSCertFile == "") != (k.TLSKeyFile == "") {
		if k.TLSCertFile == "" {
			v.add(envKafkaTLSCertFile, "", "required with KAFKA_TLS_KEY_FILE: set both for mTLS, or neither")
		} else {
			v.add(envKafkaTLSKeyFile, "", "required with KAFKA_TLS_CERT_FILE: set both for mTLS, or neither")
		}
	}
	// A duration <= 0 is reported by its own check.
	if k.SessionTimeout > 0 && k.HeartbeatInterval > 0 && k.HeartbeatInterval >= k.SessionTimeout {
		v.add(envKafkaHeartbeat, k.HeartbeatInterval.String(), "expected a Go duration less than KAFKA_SESSION_TIMEOUT (%s)", k.SessionTimeout)
	}

	b := c.Batch
	if k.GroupType == GroupTypeShare && b.Order != OrderNone && slices.Contains(orders, b.Order) {
		v.add(envProcessingOrder, string(b.Order), "expected unset or none with KAFKA_GROUP_TYPE=share: a share group hands the records of a partition to any member, one by one, so no order (of a partition or of a key) can be kept; use a consumer group (KAFKA_GROUP_TYPE=consumer) for PROCESSING_ORDER=%s", b.Order)
	}
	if b.MaxBufferedBytes >= 1 && b.MaxBufferedBytes < int64(b.MaxBytes) {
		v.add(envMaxBufferedBytes, strconv.FormatInt(b.MaxBufferedBytes, 10),
			"expected a whole number >= BATCH_MAX_BYTES (%d): a whole batch must fit in the buffer", b.MaxBytes)
	}
	if b.HandlerBackoffMax > 0 && b.HandlerBackoffMax < b.HandlerRetryBackoff {
		v.add(envHandlerBackoffMax, b.HandlerBackoffMax.String(),
			"expected a Go duration >= HANDLER_RETRY_BACKOFF (%s)", b.HandlerRetryBackoff)
	}

	c.validateCodec(v, "VALUE_", c.Value)
	c.validateCodec(v, "KEY_", c.Key)
	c.validateRegistry(v)
	if c.Handler.HTTPURL == "" && c.Handler.Name == HandlerHTTP {
		v.add(envHTTPHandlerURL, "", "required with HANDLER=http: an absolute http or https URL")
	}
	if c.Handler.LambdaFunction == "" && c.Handler.Name == HandlerLambda {
		v.add(envLambdaFunction, "", "required with HANDLER=lambda: a function name, ARN or partial ARN, optionally with :alias or :version")
	}
	c.validateDLQ(v)
	c.validateIdempotency(v)
}

// validateAuth checks what KAFKA_AUTH requires. Credentials it does not use
// are reported by their Unused rule.
func (c Config) validateAuth(v *validator) {
	k := c.Kafka
	switch k.Auth {
	case AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain:
		if k.SASLUsername == "" {
			v.add(envKafkaSASLUsername, "", "required with KAFKA_AUTH=%s", k.Auth)
		}
		if k.SASLPassword == "" {
			v.add(envKafkaSASLPassword, "", "required with KAFKA_AUTH=%s", k.Auth)
		}
	case AuthIAM:
		if k.AWSRegion == "" {
			v.add(envAWSRegion, "", "required with KAFKA_AUTH=iam: the AWS region of the cluster (AWS_REGION or AWS_DEFAULT_REGION)")
		}
	}
	// The role's format is checked only where it is used (iam, or an
	// invalid KAFKA_AUTH, reported on its own): see roleUnused.
	if k.IAMRoleARN != "" && roleUnused(&c) == "" {
		if !strings.HasPrefix(k.IAMRoleARN, "arn:") || !strings.Contains(k.IAMRoleARN, ":role/") {
			v.add(envKafkaIAMRoleARN, k.IAMRoleARN, "expected an IAM role ARN, such as arn:aws:iam::123456789012:role/name")
		}
	}
}

// sessionNameProblem applies STS's rule for RoleSessionName.
func sessionNameProblem(s string) string {
	if len(s) < 2 || len(s) > 64 {
		return fmt.Sprintf("%d characters", len(s))
	}
	for _, r := range s {
		if !legalTopicRune(r) && !strings.ContainsRune("+=,@", r) {
			return fmt.Sprintf("%q is not allowed", r)
		}
	}
	return ""
}

// validateCodec checks how the variables of one side fit together; prefix
// is "KEY_" or "VALUE_".
func (c Config) validateCodec(v *validator, prefix string, cd Codec) {
	formatVar := prefix + "FORMAT"
	fileVar := prefix + "SCHEMA_FILE"
	msgVar := prefix + "PROTO_MESSAGE"
	regVar := prefix + "SCHEMA_REGISTRY"

	// An invalid format or registry is reported by its own check.
	if !slices.Contains(formats, cd.Format) {
		return
	}
	regOK := slices.Contains(registries, cd.Registry)

	switch cd.Format {
	case FormatAvro:
		if cd.SchemaFile == "" && cd.Registry == RegistryNone {
			v.add(fileVar, "", "required with %s=avro and no schema registry: the writer schema (.avsc)", formatVar)
		}
	case FormatProtobuf:
		// With a registry and no local descriptor set, the schema comes
		// from the registry and the framing's message indexes name the
		// message; otherwise both must be given here.
		fromRegistry := regOK && cd.Registry != RegistryNone && cd.SchemaFile == ""
		if cd.ProtoMessage == "" && !fromRegistry {
			v.add(msgVar, "", "required with %s=protobuf and a schema file: the full message name, such as shop.v1.Product", formatVar)
		}
		if cd.SchemaFile == "" && regOK && cd.Registry == RegistryNone {
			v.add(fileVar, "", "required with %s=protobuf and no schema registry: a binary FileDescriptorSet", formatVar)
		}
	}
	// A schema file or message next to a format that has none is a
	// warning (schemaFileUnused, protoMessageUnused).
	if regOK && cd.Registry != RegistryNone {
		switch cd.Format {
		case FormatAvro, FormatProtobuf, FormatJSON:
		default:
			v.add(regVar, string(cd.Registry), "expected none with %s=%s: registry framing applies only to avro, protobuf and json", formatVar, cd.Format)
		}
	}
}

func (c Config) validateRegistry(v *validator) {
	r := c.Registry
	if r.URL == "" && (c.Key.Registry == RegistryConfluent || c.Value.Registry == RegistryConfluent) {
		side := envValueSchemaRegistry
		if c.Value.Registry != RegistryConfluent {
			side = envKeySchemaRegistry
		}
		v.add(envSchemaRegistryURL, "", "required with %s=confluent: an absolute http or https URL", side)
	}
	if r.Username != "" && r.Password == "" {
		v.add(envSchemaRegistryPass, "", "required with SCHEMA_REGISTRY_USERNAME: set both for basic auth, or neither")
	}
	if r.Password != "" && r.Username == "" {
		v.add(envSchemaRegistryUser, "", "required with SCHEMA_REGISTRY_PASSWORD: set both for basic auth, or neither")
	}
}

// idemKeyExpect checks IDEMPOTENCY_KEY: offset, or header:NAME.
func idemKeyExpect(k string) string {
	const exp = "expected offset, or header:NAME with NAME a record header's name"
	if k == KeyOffset {
		return ""
	}
	name, ok := strings.CutPrefix(k, KeyHeaderPrefix)
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(name, "\r\n\x00") {
		return exp
	}
	return ""
}

// redisURLExpect checks REDIS_URL's shape; the Redis client parses it
// again when it is built.
func redisURLExpect(raw string) string {
	if raw == "" {
		return ""
	}
	const exp = "expected redis://[user:password@]host:port[/db], or rediss:// for TLS: "
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return exp + "does not parse"
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return exp + "scheme must be redis or rediss"
	case u.Host == "":
		return exp + "missing host"
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return exp + "the path must be a database number"
		}
	}
	return ""
}

// tableExpect checks IDEMPOTENCY_TABLE against DynamoDB's rule for table
// names: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'.
func tableExpect(t string) string {
	if t == "" {
		return ""
	}
	const exp = "expected a DynamoDB table name: 3-255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
	if len(t) < 3 || len(t) > 255 {
		return exp
	}
	for _, r := range t {
		if !legalTopicRune(r) {
			return exp
		}
	}
	return ""
}

// validateIdempotency checks what IDEMPOTENCY_STORE requires. Settings of
// another store are reported by their Unused rule.
func (c Config) validateIdempotency(v *validator) {
	i := c.Idempotency
	switch i.Store {
	case StoreRedis:
		if i.RedisURL == "" {
			v.add(envRedisURL, "", "required with IDEMPOTENCY_STORE=redis: redis://host:port or rediss://user:password@host:port")
		}
	case StoreDynamoDB:
		if i.Table == "" {
			v.add(envIdempotencyTable, "", "required with IDEMPOTENCY_STORE=dynamodb: the table's name (deploy/dynamodb/table.json)")
		}
		if c.Kafka.AWSRegion == "" && c.Kafka.Auth != AuthIAM {
			v.add(envAWSRegion, "", "required with IDEMPOTENCY_STORE=dynamodb: the table's region (AWS_REGION or AWS_DEFAULT_REGION)")
		}
	default:
		return
	}
	if ip := c.IdempotencyInProgressTTL(); i.TTL > 0 && ip > 0 && ip >= i.TTL {
		v.add(envIdempotencyInProgress, ip.String(), "expected a Go duration less than IDEMPOTENCY_TTL (%s)", i.TTL)
	}
}

func (c Config) validateDLQ(v *validator) {
	if t := c.DLQ.Topic; t != "" {
		if slices.Contains(c.Kafka.Topics, t) {
			v.add(envDLQTopic, t, "expected a topic not in KAFKA_TOPICS: the consumer would read its own dead letters")
		}
		return
	}
	for _, src := range c.Kafka.Topics {
		if topicProblem(src) != "" {
			continue // reported under KAFKA_TOPICS
		}
		dlq := c.DLQ.TopicFor(src)
		if p := topicProblem(dlq); p != "" {
			v.add(envDLQTopic, "", "the default dead-letter topic for %q is not a legal topic name (%s); set DLQ_TOPIC", src, p)
		} else if slices.Contains(c.Kafka.Topics, dlq) {
			v.add(envDLQTopic, "", "the default dead-letter topic for %q is %q, which is also in KAFKA_TOPICS; set DLQ_TOPIC", src, dlq)
		}
	}
}

// unused is why v is set but has no effect given the rest of c, or "".
func (v *variable) unused(c *Config) string {
	if v.Unused == nil || !v.value.set(c) {
		return ""
	}
	return v.Unused(c)
}

// Unused returns a warning for each variable that is set but that the rest
// of the configuration does not use (REDIS_URL without
// IDEMPOTENCY_STORE=redis, SASL credentials with KAFKA_AUTH=iam), in the
// table's order. Such a variable is ignored, its value unchecked: a
// platform may set it for another container. Values are never part of a
// warning.
func (c Config) Unused() Warnings {
	var ws Warnings
	for i := range variables {
		if why := variables[i].unused(&c); why != "" {
			ws = append(ws, Warning{Var: variables[i].Name, Message: why})
		}
	}
	return ws
}
