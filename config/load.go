package config

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// What each kind of value should look like, shared by the parse problems of
// Load and the range problems of Validate so an operator reads one wording.
const (
	expBool        = "true, false, 1 or 0"
	expPosInt      = "a whole number >= 1"
	expPosDuration = "a Go duration > 0, such as 250ms, 3s or 2m"
	expOptDuration = expPosDuration + ", or unset for no limit"
)

// Load reads the configuration through lookup (os.LookupEnv in production,
// a map in tests; nil means os.LookupEnv), applies the contract's defaults
// and validates the result.
//
// A variable that is set but empty, or only blanks, counts as unset. Values
// are trimmed of surrounding blanks, except secrets, which are taken as
// given. Lists are comma separated; entries are trimmed, empty entries
// dropped and duplicates removed. Enumerations are case-insensitive.
//
// handlerNames are the Go handlers compiled into the binary, accepted for
// HANDLER besides log, http and discard.
//
// Every parse problem and every validation problem is returned at once as
// Errors. On error the Config holds what could be read (defaults in place of
// unparsable values); it must not be run.
//
// Load reads only the variables it knows, so it cannot see a misspelt one:
// LoadEnviron, or CheckNames next to Load, checks the names too.
func Load(lookup func(string) (string, bool), handlerNames ...string) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	l := &loader{lookup: lookup}

	var c Config
	k := &c.Kafka
	k.Brokers = l.list(envKafkaBrokers)
	k.Topics = l.list(envKafkaTopics)
	k.GroupID = l.str(envKafkaGroupID, "")
	k.Auth = Auth(l.enum(envKafkaAuth, string(DefaultAuth)))
	k.TLS, k.TLSExplicit = l.boolean(envKafkaTLS, k.Auth != AuthNone)
	k.TLSCAFile = l.str(envKafkaTLSCAFile, "")
	k.TLSCertFile = l.str(envKafkaTLSCertFile, "")
	k.TLSKeyFile = l.str(envKafkaTLSKeyFile, "")
	k.TLSServerName = l.str(envKafkaTLSServerName, "")
	k.TLSInsecureSkipVerify, _ = l.boolean(envKafkaTLSInsecure, false)
	k.SASLUsername = l.str(envKafkaSASLUsername, "")
	k.SASLPassword = l.str(envKafkaSASLPassword, "")
	k.AWSRegion = l.str(envAWSRegion, l.str(envAWSDefaultRegion, ""))
	k.IAMRoleARN = l.str(envKafkaIAMRoleARN, "")
	k.IAMSessionName = l.str(envKafkaIAMSessionName, DefaultIAMSessionName)
	k.ClientID = l.str(envKafkaClientID, DefaultClientID)
	k.StartOffset = StartOffset(l.enum(envKafkaStartOffset, string(DefaultStartOffset)))
	k.SessionTimeout = l.duration(envKafkaSessionTimeout, DefaultSessionTimeout)
	k.HeartbeatInterval = l.duration(envKafkaHeartbeat, DefaultHeartbeatInterval)
	k.RebalanceTimeout = l.duration(envKafkaRebalanceTimeout, DefaultRebalanceTimeout)
	k.InstanceID = l.str(envKafkaInstanceID, "")
	k.CommitInterval = l.duration(envKafkaCommitInterval, DefaultCommitInterval)
	k.StartupTimeout = l.duration(envStartupTimeout, DefaultStartupTimeout)

	b := &c.Batch
	b.MaxRecords = int(l.integer(envBatchMaxRecords, DefaultBatchMaxRecords, strconv.IntSize))
	b.MaxBytes = int(l.integer(envBatchMaxBytes, DefaultBatchMaxBytes, strconv.IntSize))
	b.MaxWait = l.duration(envBatchMaxWait, DefaultBatchMaxWait)
	b.MaxInFlight = int(l.integer(envMaxInFlightBatches, DefaultMaxInFlightBatches, strconv.IntSize))
	b.MaxBufferedBytes = l.integer(envMaxBufferedBytes, DefaultMaxBufferedBytes, 64)
	b.HandlerMaxAttempts = int(l.integer(envHandlerMaxAttempts, DefaultHandlerMaxAttempts, strconv.IntSize))
	b.HandlerRetryBackoff = l.duration(envHandlerRetryBackoff, DefaultHandlerRetryBackoff)
	b.HandlerBackoffMax = l.duration(envHandlerBackoffMax, DefaultHandlerBackoffMax)
	b.HandlerMaxRecordAge = l.optionalDuration(envHandlerMaxRecordAge)
	b.ShutdownTimeout = l.duration(envShutdownTimeout, DefaultShutdownTimeout)

	c.Value.Format = Format(l.enum(envValueFormat, string(DefaultValueFormat)))
	c.Key.Format = Format(l.enum(envKeyFormat, string(DefaultKeyFormat)))
	c.Value.SchemaFile = l.str(envValueSchemaFile, "")
	c.Key.SchemaFile = l.str(envKeySchemaFile, "")
	c.Value.ProtoMessage = l.str(envValueProtoMessage, "")
	c.Key.ProtoMessage = l.str(envKeyProtoMessage, "")
	c.Value.Registry = Registry(l.enum(envValueSchemaRegistry, string(RegistryNone)))
	c.Key.Registry = Registry(l.enum(envKeySchemaRegistry, string(RegistryNone)))
	c.Registry.URL = l.str(envSchemaRegistryURL, "")
	c.Registry.Username = l.str(envSchemaRegistryUser, "")
	c.Registry.Password = l.str(envSchemaRegistryPass, "")

	c.Handler.Name = l.str(envHandler, DefaultHandler)
	c.Handler.HTTPURL = l.str(envHTTPHandlerURL, "")
	c.Handler.HTTPTimeout = l.duration(envHTTPHandlerTimeout, DefaultHTTPHandlerTimeout)
	c.Handler.HTTPAuth = l.str(envHTTPHandlerAuth, "")

	c.DLQ.Topic = l.str(envDLQTopic, "")

	c.Ops.MetricsAddr = l.str(envMetricsAddr, DefaultMetricsAddr)
	c.Ops.LogLevel = l.enum(envLogLevel, DefaultLogLevel)
	c.Ops.LogFormat = LogFormat(l.enum(envLogFormat, string(DefaultLogFormat)))
	c.Ops.UnreadyAfter = l.duration(envUnreadyAfter, DefaultUnreadyAfter)

	problems := l.problems
	if err := c.Validate(handlerNames...); err != nil {
		// A variable that did not parse kept its default; what Validate says
		// about it would only confuse, so keep the parse problem alone.
		for _, p := range err.(Errors) {
			if !slices.ContainsFunc(l.problems, func(q Problem) bool { return q.Var == p.Var }) {
				problems = append(problems, p)
			}
		}
	}
	return c, asError(problems)
}

// loader reads variables and collects parse problems instead of stopping at
// the first one.
type loader struct {
	lookup   func(string) (string, bool)
	problems Errors
}

// raw returns a variable's value and whether it is set to something other
// than blanks. Secrets are returned untrimmed: a password may legitimately
// begin or end with a space.
func (l *loader) raw(name string) (string, bool) {
	v, _ := l.lookup(name)
	if strings.TrimSpace(v) == "" {
		return "", false
	}
	if isSecret(name) {
		return v, true
	}
	return strings.TrimSpace(v), true
}

func (l *loader) fail(name, value, expected string) {
	if isSecret(name) {
		value = ""
	}
	l.problems = append(l.problems, Problem{Var: name, Value: value, Expected: expected})
}

func (l *loader) str(name, def string) string {
	if v, ok := l.raw(name); ok {
		return v
	}
	return def
}

// enum returns a lower-cased value; Validate checks it against the choices.
func (l *loader) enum(name, def string) string {
	return strings.ToLower(l.str(name, def))
}

// list splits a comma-separated value, trimming entries and dropping empty
// entries and duplicates.
func (l *loader) list(name string) []string {
	v, ok := l.raw(name)
	if !ok {
		return nil
	}
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		e = strings.TrimSpace(e)
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// boolean returns the value, or def when unset or unparsable, and whether a
// valid value was given.
func (l *loader) boolean(name string, def bool) (value, set bool) {
	v, ok := l.raw(name)
	if !ok {
		return def, false
	}
	switch strings.ToLower(v) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	l.fail(name, v, "expected "+expBool)
	return def, false
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		l.fail(name, v, "expected "+expPosDuration)
		return def
	}
	return d
}

// optionalDuration reads a duration whose zero value means "no limit". Set,
// it must be positive: Validate cannot tell a 0s that was written from an
// unset variable, and an operator who wrote 0s more likely meant "expire at
// once" than "never", so it is refused rather than read as no limit.
func (l *loader) optionalDuration(name string) time.Duration {
	v, ok := l.raw(name)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.fail(name, v, "expected "+expOptDuration)
		return 0
	}
	return d
}

func (l *loader) integer(name string, def int64, bits int) int64 {
	v, ok := l.raw(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		l.fail(name, v, "expected "+expPosInt)
		return def
	}
	return n
}
