package config

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

// envFileLine is what docker --env-file and kubectl create configmap
// --from-env-file take as a variable: NAME=VALUE, the value literal.
var envFileLine = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// readEnvFile reads text as docker --env-file does: blank lines and lines
// starting with '#' skipped, the value taken literally after the first
// '='; any other line fails the test.
func readEnvFile(t *testing.T, text string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !envFileLine.MatchString(line) {
			t.Errorf("got line %q, want NAME=VALUE or a comment line", line)
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if _, dup := vars[k]; dup {
			t.Errorf("got %s twice", k)
		}
		vars[k] = v
	}
	return vars
}

// TestPrintEnvReadBack checks `consumer config --env`: a file that an env
// file reader takes as it is (no comment after a value), that Load takes
// back to the same effective configuration (once the secrets it leaves
// out are added back), with no derived default pinned: a default that
// follows another variable is left out unless it was set.
func TestPrintEnvReadBack(t *testing.T) {
	cert := tempFile(t, "ca.pem")
	tests := []struct {
		name    string
		kv      []string
		omitted []string // variables the file must not set
		never   []string // text that must not appear
	}{
		{name: "defaults", omitted: []string{"KAFKA_TLS", "DLQ_TOPIC", "OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "HANDLER_MAX_RECORD_AGE", "KAFKA_SASL_PASSWORD"}},
		{name: "several topics, no DLQ_TOPIC", kv: []string{"KAFKA_TOPICS", "a,b"}, omitted: []string{"DLQ_TOPIC"}},
		{name: "DLQ_TOPIC set", kv: []string{"KAFKA_TOPICS", "a,b", "DLQ_TOPIC", "dead"}},
		{name: "tls derived from auth none", kv: []string{"KAFKA_AUTH", "none"}, omitted: []string{"KAFKA_TLS"}},
		{name: "tls explicit", kv: []string{"KAFKA_AUTH", "scram-sha-512", "KAFKA_TLS", "false", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "s3cret-pw"},
			omitted: []string{"KAFKA_SASL_PASSWORD"}, never: []string{"s3cret-pw"}},
		{name: "redis with derived prefix and claim", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://cache:6379/0"},
			omitted: []string{"IDEMPOTENCY_KEY_PREFIX", "IDEMPOTENCY_IN_PROGRESS_TTL"}},
		{name: "redis url with a password", kv: []string{"IDEMPOTENCY_STORE", "redis", "REDIS_URL", "rediss://consumer:hunter2@cache:6379/0"},
			omitted: []string{"REDIS_URL"}, never: []string{"hunter2"}},
		{name: "http handler url with a token", kv: []string{"HANDLER", "http", "HTTP_HANDLER_URL", "https://h/x?token=t0ken", "HTTP_HANDLER_AUTH_HEADER", "Bearer b34rer"},
			omitted: []string{"HTTP_HANDLER_URL", "HTTP_HANDLER_AUTH_HEADER"}, never: []string{"t0ken", "b34rer"}},
		{name: "tracing with default endpoint", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"},
			omitted: []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}},
		{name: "tracing endpoint set", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"}},
		{name: "an unused variable", kv: []string{"KAFKA_AUTH", "none", "KAFKA_TLS_CA_FILE", cert}, omitted: []string{"KAFKA_TLS_CA_FILE"}},
		{name: "record age set", kv: []string{"HANDLER_MAX_RECORD_AGE", "1h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := env(tt.kv...)
			c, err := Load(lookup(in))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := c.PrintEnv(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			got := readEnvFile(t, out)
			for _, name := range tt.omitted {
				if v, ok := got[name]; ok {
					t.Errorf("got %s=%s, want it left out:\n%s", name, v, out)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(out, s) {
					t.Errorf("got %q in the output, want it never shown:\n%s", s, out)
				}
			}
			for name, v := range got {
				if strings.Contains(v, "#") || v == "" {
					t.Errorf("got %s=%q, want a value without a comment, and no empty value", name, v)
				}
			}

			// Read back, with what was left out for being a secret or
			// holding one added back as the operator's secret store would.
			back := maps.Clone(got)
			for _, name := range tt.omitted {
				if v, ok := in[name]; ok && (isSecret(name) || RedactURL(v) != v) {
					back[name] = v
				}
			}
			c2, err := Load(lookup(back))
			if err != nil {
				t.Fatalf("read back: %v\nfile:\n%s", err, out)
			}
			// The same as the configuration without what it ignores.
			used := maps.Clone(in)
			for _, w := range c.Unused() {
				delete(used, w.Var)
			}
			c1, err := Load(lookup(used))
			if err != nil {
				t.Fatal(err)
			}
			var p1, p2, e1, e2 strings.Builder
			_ = c1.Print(&p1)
			_ = c2.Print(&p2)
			if p1.String() != p2.String() {
				t.Errorf("read back, got\n%s\nwant\n%s", p2.String(), p1.String())
			}
			_ = c1.PrintEnv(&e1)
			if err := c2.PrintEnv(&e2); err != nil || e2.String() != e1.String() {
				t.Errorf("printed again, got\n%s\nwant\n%s", e2.String(), e1.String())
			}
		})
	}
}

// TestPrintEnvFollowsTheGroup checks that the defaults derived from other
// variables follow them in a file reused elsewhere: the same file with
// another group or topic.
func TestPrintEnvFollowsTheGroup(t *testing.T) {
	c, err := Load(lookup(env("IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://cache:6379")))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.PrintEnv(&b); err != nil {
		t.Fatal(err)
	}
	vars := readEnvFile(t, b.String())
	vars["KAFKA_GROUP_ID"] = "brands-sync-prod"
	vars["KAFKA_TOPICS"] = "prices"
	c2, err := Load(lookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.IdempotencyPrefix(); got != "brands-sync-prod" {
		t.Errorf("got key prefix %q, want the new group's", got)
	}
	if got := c2.DLQ.TopicFor("prices"); got != "prices.dlq" {
		t.Errorf("got dead-letter topic %q, want prices.dlq", got)
	}
}
