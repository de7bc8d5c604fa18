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
	"time"
)

// maxTopicLen is Kafka's limit on a topic name (and a group instance id).
const maxTopicLen = 249

// Validate reports every invalid field at once as Errors, sorted in the
// contract's order, or nil. It neither changes c nor dials anything; it does
// open the files the configuration names, to check that they are readable.
//
// handlerNames are the Go handlers compiled into the binary, accepted for
// HANDLER besides log, http and discard.
func (c Config) Validate(handlerNames ...string) error {
	v := &validator{}
	c.validateKafka(v)
	c.validateBatch(v)
	c.validateCodec(v, "VALUE_", c.Value)
	c.validateCodec(v, "KEY_", c.Key)
	c.validateRegistry(v)
	c.validateHandler(v, handlerNames)
	c.validateDLQ(v)
	c.validateOps(v)
	return asError(v.problems)
}

type validator struct{ problems Errors }

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

func (v *validator) positiveDuration(name string, d time.Duration) {
	if d <= 0 {
		v.add(name, d.String(), "expected "+expPosDuration)
	}
}

func (v *validator) positiveInt(name string, n int64) {
	if n < 1 {
		v.add(name, strconv.FormatInt(n, 10), "expected "+expPosInt)
	}
}

// file checks that a set path names a readable regular file.
func (v *validator) file(name, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		v.add(name, path, "expected a readable file: %s", pathErr(err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		v.add(name, path, "expected a readable file: %s", pathErr(err))
	case fi.IsDir():
		v.add(name, path, "expected a readable file, not a directory")
	}
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

func (c Config) validateKafka(v *validator) {
	k := c.Kafka

	if len(k.Brokers) == 0 {
		v.add(envKafkaBrokers, "", "required: comma-separated host:port list")
	}
	for _, b := range k.Brokers {
		if p := hostPortProblem(b, true, 1); p != "" {
			v.add(envKafkaBrokers, b, "expected host:port with a numeric port 1-65535: %s", p)
		}
	}

	if len(k.Topics) == 0 {
		v.add(envKafkaTopics, "", "required: comma-separated list of topics")
	}
	for _, t := range k.Topics {
		if p := topicProblem(t); p != "" {
			v.add(envKafkaTopics, t, "%s: %s", expTopic, p)
		}
	}

	if k.GroupID == "" {
		v.add(envKafkaGroupID, "", "required: the consumer group id, one per environment")
	}

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
	case AuthNone:
	default:
		v.add(envKafkaAuth, string(k.Auth), "expected %s", oneOf(AuthIAM, AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain, AuthNone))
	}
	if k.Auth == AuthIAM || k.Auth == AuthNone {
		// Credentials that would be silently ignored usually mean KAFKA_AUTH
		// was forgotten; failing now beats an authentication error later.
		if k.SASLUsername != "" {
			v.add(envKafkaSASLUsername, k.SASLUsername, "set, but KAFKA_AUTH=%s does not use it; expected KAFKA_AUTH=%s", k.Auth, oneOf(AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain))
		}
		if k.SASLPassword != "" {
			v.add(envKafkaSASLPassword, "", "set, but KAFKA_AUTH=%s does not use it; expected KAFKA_AUTH=%s", k.Auth, oneOf(AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain))
		}
	}
	if k.IAMRoleARN != "" {
		switch {
		case slices.Contains([]Auth{AuthSCRAMSHA512, AuthSCRAMSHA256, AuthPlain, AuthNone}, k.Auth):
			v.add(envKafkaIAMRoleARN, k.IAMRoleARN, "set, but KAFKA_AUTH=%s does not use it; expected KAFKA_AUTH=iam", k.Auth)
		case !strings.HasPrefix(k.IAMRoleARN, "arn:") || !strings.Contains(k.IAMRoleARN, ":role/"):
			v.add(envKafkaIAMRoleARN, k.IAMRoleARN, "expected an IAM role ARN, such as arn:aws:iam::123456789012:role/name")
		}
	}
	if p := sessionNameProblem(k.IAMSessionName); p != "" {
		v.add(envKafkaIAMSessionName, k.IAMSessionName, "expected an STS role session name: 2-64 characters of a-z, A-Z, 0-9, +=,.@_-: %s", p)
	}

	if !k.TLS {
		if k.Auth != AuthNone && !k.TLSExplicit {
			v.add(envKafkaTLS, "", "SASL without TLS is refused unless KAFKA_TLS=false is set explicitly")
		}
		for _, f := range []struct{ name, value string }{
			{envKafkaTLSCAFile, k.TLSCAFile},
			{envKafkaTLSCertFile, k.TLSCertFile},
			{envKafkaTLSKeyFile, k.TLSKeyFile},
			{envKafkaTLSServerName, k.TLSServerName},
		} {
			if f.value != "" {
				v.add(f.name, f.value, "set, but TLS is off; expected KAFKA_TLS=true or this variable unset")
			}
		}
		if k.TLSInsecureSkipVerify {
			v.add(envKafkaTLSInsecure, "true", "set, but TLS is off; expected KAFKA_TLS=true or this variable unset")
		}
	}
	if (k.TLSCertFile == "") != (k.TLSKeyFile == "") {
		if k.TLSCertFile == "" {
			v.add(envKafkaTLSCertFile, "", "required with KAFKA_TLS_KEY_FILE: set both for mTLS, or neither")
		} else {
			v.add(envKafkaTLSKeyFile, "", "required with KAFKA_TLS_CERT_FILE: set both for mTLS, or neither")
		}
	}
	v.file(envKafkaTLSCAFile, k.TLSCAFile)
	v.file(envKafkaTLSCertFile, k.TLSCertFile)
	v.file(envKafkaTLSKeyFile, k.TLSKeyFile)

	if k.ClientID == "" {
		v.add(envKafkaClientID, "", "required: a Kafka client id")
	}
	if k.StartOffset != StartEarliest && k.StartOffset != StartLatest {
		v.add(envKafkaStartOffset, string(k.StartOffset), "expected %s", oneOf(StartEarliest, StartLatest))
	}
	v.positiveDuration(envKafkaSessionTimeout, k.SessionTimeout)
	switch {
	case k.HeartbeatInterval <= 0:
		v.positiveDuration(envKafkaHeartbeat, k.HeartbeatInterval)
	case k.SessionTimeout > 0 && k.HeartbeatInterval >= k.SessionTimeout:
		v.add(envKafkaHeartbeat, k.HeartbeatInterval.String(), "expected a Go duration less than KAFKA_SESSION_TIMEOUT (%s)", k.SessionTimeout)
	}
	v.positiveDuration(envKafkaRebalanceTimeout, k.RebalanceTimeout)
	if k.InstanceID != "" {
		// Kafka holds group.instance.id to the same rule as a topic name.
		if p := topicProblem(k.InstanceID); p != "" {
			v.add(envKafkaInstanceID, k.InstanceID, "expected a static member id: 1-249 characters of a-z, A-Z, 0-9, '.', '_', '-': %s", p)
		}
	}
	v.positiveDuration(envKafkaCommitInterval, k.CommitInterval)
	v.positiveDuration(envStartupTimeout, k.StartupTimeout)
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

func (c Config) validateBatch(v *validator) {
	b := c.Batch
	v.positiveInt(envBatchMaxRecords, int64(b.MaxRecords))
	v.positiveInt(envBatchMaxBytes, int64(b.MaxBytes))
	v.positiveDuration(envBatchMaxWait, b.MaxWait)
	v.positiveInt(envMaxInFlightBatches, int64(b.MaxInFlight))
	switch {
	case b.MaxBufferedBytes < 1:
		v.positiveInt(envMaxBufferedBytes, b.MaxBufferedBytes)
	case b.MaxBufferedBytes < int64(b.MaxBytes):
		v.add(envMaxBufferedBytes, strconv.FormatInt(b.MaxBufferedBytes, 10),
			"expected a whole number >= BATCH_MAX_BYTES (%d): a whole batch must fit in the buffer", b.MaxBytes)
	}
	v.positiveInt(envHandlerMaxAttempts, int64(b.HandlerMaxAttempts))
	v.positiveDuration(envHandlerRetryBackoff, b.HandlerRetryBackoff)
	switch {
	case b.HandlerBackoffMax <= 0:
		v.positiveDuration(envHandlerBackoffMax, b.HandlerBackoffMax)
	case b.HandlerBackoffMax < b.HandlerRetryBackoff:
		v.add(envHandlerBackoffMax, b.HandlerBackoffMax.String(),
			"expected a Go duration >= HANDLER_RETRY_BACKOFF (%s)", b.HandlerRetryBackoff)
	}
	// Zero is "no limit" (HANDLER_MAX_RECORD_AGE unset); Load refuses a
	// zero that was written out.
	if b.HandlerMaxRecordAge < 0 {
		v.add(envHandlerMaxRecordAge, b.HandlerMaxRecordAge.String(), "expected "+expOptDuration)
	}
	v.positiveDuration(envShutdownTimeout, b.ShutdownTimeout)
}

// validateCodec checks one side; prefix is "KEY_" or "VALUE_".
func (c Config) validateCodec(v *validator, prefix string, cd Codec) {
	formatVar := prefix + "FORMAT"
	fileVar := prefix + "SCHEMA_FILE"
	msgVar := prefix + "PROTO_MESSAGE"
	regVar := prefix + "SCHEMA_REGISTRY"

	formatOK := true
	switch cd.Format {
	case FormatJSON, FormatAvro, FormatProtobuf, FormatString, FormatBytes, FormatInt, FormatLong:
	default:
		formatOK = false
		v.add(formatVar, string(cd.Format), "expected %s",
			oneOf(FormatJSON, FormatAvro, FormatProtobuf, FormatString, FormatBytes, FormatInt, FormatLong))
	}
	regOK := true
	switch cd.Registry {
	case RegistryNone, RegistryConfluent, RegistryGlue:
	default:
		regOK = false
		v.add(regVar, string(cd.Registry), "expected %s", oneOf(RegistryNone, RegistryConfluent, RegistryGlue))
	}
	v.file(fileVar, cd.SchemaFile)
	if !formatOK {
		return
	}

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
	default:
		// A schema file next to a format that has none usually means the
		// format variable was forgotten.
		if cd.SchemaFile != "" {
			v.add(fileVar, cd.SchemaFile, "set, but %s=%s does not use a schema file; expected %s=avro or protobuf", formatVar, cd.Format, formatVar)
		}
	}
	if cd.Format != FormatProtobuf && cd.ProtoMessage != "" {
		v.add(msgVar, cd.ProtoMessage, "set, but %s=%s; expected %s=protobuf", formatVar, cd.Format, formatVar)
	}
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
	confluent := c.Key.Registry == RegistryConfluent || c.Value.Registry == RegistryConfluent
	switch {
	case r.URL != "":
		if p := httpURLProblem(r.URL); p != "" {
			v.add(envSchemaRegistryURL, r.URL, "expected an absolute http or https URL: %s", p)
		}
	case confluent:
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

func (c Config) validateHandler(v *validator, handlerNames []string) {
	h := c.Handler
	builtin := []string{HandlerLog, HandlerHTTP, HandlerDiscard}
	if !slices.Contains(builtin, h.Name) && !slices.Contains(handlerNames, h.Name) {
		v.add(envHandler, h.Name, "expected %s", oneOf(append(builtin, handlerNames...)...))
	}
	switch {
	case h.HTTPURL != "":
		if p := httpURLProblem(h.HTTPURL); p != "" {
			v.add(envHTTPHandlerURL, h.HTTPURL, "expected an absolute http or https URL: %s", p)
		}
	case h.Name == HandlerHTTP:
		v.add(envHTTPHandlerURL, "", "required with HANDLER=http: an absolute http or https URL")
	}
	v.positiveDuration(envHTTPHandlerTimeout, h.HTTPTimeout)
	if strings.ContainsAny(h.HTTPAuth, "\r\n\x00") {
		v.add(envHTTPHandlerAuth, "", "expected a single-line header value (check for a trailing newline)")
	}
}

func (c Config) validateDLQ(v *validator) {
	if t := c.DLQ.Topic; t != "" {
		if p := topicProblem(t); p != "" {
			v.add(envDLQTopic, t, "%s: %s", expTopic, p)
		}
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

func (c Config) validateOps(v *validator) {
	o := c.Ops
	if o.MetricsAddr == "" {
		v.add(envMetricsAddr, "", "required: a listen address host:port, such as :9090")
	} else if p := hostPortProblem(o.MetricsAddr, false, 0); p != "" {
		v.add(envMetricsAddr, o.MetricsAddr, "expected a listen address host:port, such as :9090: %s", p)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, o.LogLevel) {
		v.add(envLogLevel, o.LogLevel, "expected %s", oneOf("debug", "info", "warn", "error"))
	}
	if o.LogFormat != LogJSON && o.LogFormat != LogConsole {
		v.add(envLogFormat, string(o.LogFormat), "expected %s", oneOf(LogJSON, LogConsole))
	}
	v.positiveDuration(envUnreadyAfter, o.UnreadyAfter)
}
