package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

const protoSet = "../internal/codec/testdata/product.pb"

// testEnv puts the three required variables and AWS_REGION, overridden by
// kv pairs, into the process environment as well as into the lookup it
// returns: the names check reads the names of the process environment that
// the lookup also knows. Tests using it cannot run in parallel.
func testEnv(t *testing.T, kv ...string) func(string) (string, bool) {
	t.Helper()
	m := map[string]string{
		"KAFKA_BROKERS":  "127.0.0.1:9092",
		"KAFKA_TOPICS":   "products",
		"KAFKA_GROUP_ID": "brands-sync-test",
		"AWS_REGION":     "eu-west-1",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	for k, v := range m {
		t.Setenv(k, v)
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// brokenAvsc writes an Avro schema that does not parse: a field with no
// type.
func brokenAvsc(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "broken.avsc")
	if err := os.WriteFile(p, []byte(`{"type": "record", "name": "P", "fields": [{"name": "id"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withFailingHandler compiles in a handler named "broken" whose factory
// fails, as a team's handler with a bad setting would.
func withFailingHandler(t *testing.T) {
	t.Helper()
	testHandlers["broken"] = func(handler.Deps) (handler.Handler, error) {
		return nil, errors.New("broken handler: BRANDS_TABLE is not set")
	}
	t.Cleanup(func() { delete(testHandlers, "broken") })
}

func TestConfigCommand(t *testing.T) {
	avsc := brokenAvsc(t)
	tests := []struct {
		name       string
		env        []string
		wantCode   int
		wantStdout []string // lines that must appear on stdout
		wantStderr []string // lines that must appear on stderr
		never      []string // must appear in neither
	}{
		{name: "valid", wantCode: exitOK, wantStdout: []string{"KAFKA_TOPICS=products", "STARTUP_TIMEOUT=2m0s", "HANDLER_MAX_RECORD_AGE="}},
		{name: "broken avsc and missing proto message", env: []string{
			"VALUE_FORMAT", "avro", "VALUE_SCHEMA_FILE", avsc,
			"KEY_FORMAT", "protobuf", "KEY_SCHEMA_FILE", protoSet, "KEY_PROTO_MESSAGE", "shop.v1.Missing",
		}, wantCode: exitConfig, wantStderr: []string{
			"invalid configuration:",
			`VALUE_SCHEMA_FILE="` + avsc + `": expected an Avro schema (.avsc) that parses: parsing avro schema ` + avsc + `: ` + "", // prefix, checked below
			`KEY_PROTO_MESSAGE="shop.v1.Missing": expected the full name of a message in KEY_SCHEMA_FILE: `,
		}},
		{name: "proto message found", env: []string{"KEY_FORMAT", "protobuf", "KEY_SCHEMA_FILE", protoSet, "KEY_PROTO_MESSAGE", "shop.v1.ProductKey"}, wantCode: exitOK,
			wantStdout: []string{"KEY_PROTO_MESSAGE=shop.v1.ProductKey"}},
		{name: "near miss", env: []string{"HANDLER_MAX_ATTEMPT", "5"}, wantCode: exitConfig, wantStderr: []string{
			"HANDLER_MAX_ATTEMPT: unknown variable; did you mean HANDLER_MAX_ATTEMPTS?",
		}},
		{name: "every problem at once", env: []string{
			"KAFKA_GROUP_ID", "", "KAFKA_TOPIC", "products", "STARTUP_TIMEOUT", "0s",
			"VALUE_FORMAT", "avro", "VALUE_SCHEMA_FILE", avsc, "KAFKA_LINGER", "5ms",
		}, wantCode: exitConfig, wantStderr: []string{
			"KAFKA_GROUP_ID: required: the consumer group id, one per environment",
			`STARTUP_TIMEOUT="0s": expected a Go duration > 0, such as 250ms, 3s or 2m`,
			"KAFKA_TOPIC: unknown variable; did you mean KAFKA_TOPICS?",
			"warning: KAFKA_LINGER: unknown variable in the service's KAFKA_ namespace; ignored",
		}},
		{name: "invalid side not reported twice", env: []string{"VALUE_FORMAT", "xml"}, wantCode: exitConfig, wantStderr: []string{
			`VALUE_FORMAT="xml": expected json, avro, protobuf, string, bytes, int or long`,
		}, never: []string{"decodes"}},
		{name: "warnings with a valid configuration", env: []string{"KAFKA_LINGER", "5ms", "OTEL_FOO_BAR", "x"}, wantCode: exitOK, wantStderr: []string{
			"warning: KAFKA_LINGER: unknown variable in the service's KAFKA_ namespace; ignored",
			"warning: OTEL_FOO_BAR: an OpenTelemetry variable this service does not read; ignored",
		}, wantStdout: []string{"KAFKA_BROKERS=127.0.0.1:9092"}},
		{name: "a platform's variable the configuration does not use", env: []string{"REDIS_URL", "redis://cache:6379", "KAFKA_SASL_USERNAME", "u"}, wantCode: exitOK, wantStderr: []string{
			"warning: KAFKA_SASL_USERNAME: set, but KAFKA_AUTH=iam does not use it (KAFKA_AUTH=scram-sha-512, scram-sha-256 or plain does); ignored",
			"warning: REDIS_URL: set, but IDEMPOTENCY_STORE=none does not use it (IDEMPOTENCY_STORE=redis does); ignored",
		}, wantStdout: []string{"KAFKA_BROKERS=127.0.0.1:9092"}},
		{name: "handler that cannot be built", env: []string{"HANDLER", "broken"}, wantCode: exitConfig, wantStderr: []string{
			`HANDLER="broken": expected a handler that can be built: broken handler: BRANDS_TABLE is not set`,
		}},
		{name: "query values redacted", env: []string{
			"HANDLER", "http", "HTTP_HANDLER_URL", "https://h/x?token=s3cret-t0ken&a=b",
			"VALUE_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "https://sr:pa55word@registry:8081/?apikey=s3cret-k3y",
		}, wantCode: exitOK, wantStdout: []string{
			"HTTP_HANDLER_URL=https://h/x?token=REDACTED&a=REDACTED",
			"SCHEMA_REGISTRY_URL=https://sr:xxxxx@registry:8081/?apikey=REDACTED",
		}, never: []string{"s3cret", "pa55word"}},
		{name: "query values redacted in problems", env: []string{
			"HANDLER", "http", "HTTP_HANDLER_URL", "ftp://h/x?token=s3cret-t0ken",
			"VALUE_SCHEMA_REGISTRY", "confluent", "SCHEMA_REGISTRY_URL", "https://sr:pa55word@/?apikey=s3cret-k3y",
		}, wantCode: exitConfig, wantStderr: []string{
			`SCHEMA_REGISTRY_URL="https://sr:xxxxx@/?apikey=REDACTED": expected an absolute http or https URL: missing host`,
			`HTTP_HANDLER_URL="ftp://h/x?token=REDACTED": expected an absolute http or https URL: scheme must be http or https`,
		}, never: []string{"s3cret", "pa55word"}},
		{name: "unparsable url redacted whole", env: []string{"HANDLER", "http", "HTTP_HANDLER_URL", "https://h x/?token=s3cret-t0ken"},
			wantCode: exitConfig, wantStderr: []string{`HTTP_HANDLER_URL="<redacted>": expected an absolute http or https URL: does not parse`},
			never: []string{"s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withFailingHandler(t)
			var stdout, stderr strings.Builder
			code := run([]string{"config"}, testEnv(t, tt.env...), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("got exit %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if tt.wantCode != exitOK && stdout.Len() != 0 {
				t.Errorf("got stdout %q, want nothing", stdout.String())
			}
			if tt.wantCode == exitOK && strings.Contains(stderr.String(), "invalid") {
				t.Errorf("got stderr %q, want warnings at most", stderr.String())
			}
			hasLine(t, "stdout", stdout.String(), tt.wantStdout)
			hasLine(t, "stderr", stderr.String(), tt.wantStderr)
			for _, s := range tt.never {
				if strings.Contains(stdout.String()+stderr.String(), s) {
					t.Errorf("got %q in output, want it never shown:\n%s%s", s, stdout.String(), stderr.String())
				}
			}
		})
	}
}

// TestConfigEnvReadBack checks `consumer config --env`: its output, read as
// an env file, is an environment config takes back, warnings and all, to
// the same output.
func TestConfigEnvReadBack(t *testing.T) {
	var stdout, stderr strings.Builder
	code := run([]string{"config", "--env"}, testEnv(t, "KAFKA_AUTH", "none", "KAFKA_TOPICS", "a,b", "IDEMPOTENCY_STORE", "redis", "REDIS_URL", "redis://cache:6379", "IDEMPOTENCY_TABLE", "t-1"), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s", code, stderr.String())
	}
	hasLine(t, "stderr", stderr.String(), []string{"warning: IDEMPOTENCY_TABLE: set, but IDEMPOTENCY_STORE=redis does not use it"})
	file := stdout.String()
	hasLine(t, "stdout", file, []string{"KAFKA_TOPICS=a,b", "REDIS_URL=redis://cache:6379", "# IDEMPOTENCY_TABLE left out: "})
	back := map[string]string{}
	for l := range strings.Lines(file) {
		if l = strings.TrimSuffix(l, "\n"); !strings.HasPrefix(l, "#") {
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.Contains(v, "#") {
				t.Fatalf("got line %q, want NAME=VALUE without a comment", l)
			}
			back[k] = v
		}
	}
	for _, derived := range []string{"KAFKA_TLS", "DLQ_TOPIC", "IDEMPOTENCY_KEY_PREFIX"} {
		if _, ok := back[derived]; ok {
			t.Errorf("got %s in the file, want it left out (a default that follows other variables)", derived)
		}
	}
	for k := range back {
		t.Setenv(k, back[k])
	}
	var again, stderr2 strings.Builder
	code = run([]string{"config", "--env"}, func(k string) (string, bool) { v, ok := back[k]; return v, ok }, &again, &stderr2)
	if code != exitOK || stderr2.Len() != 0 {
		t.Fatalf("read back: got exit %d and\n%s\nwant 0 and no warning", code, stderr2.String())
	}
	var want strings.Builder
	for l := range strings.Lines(file) {
		if !strings.HasPrefix(l, "# IDEMPOTENCY_TABLE left out") {
			want.WriteString(l)
		}
	}
	if again.String() != want.String() {
		t.Errorf("read back, got\n%s\nwant\n%s", again.String(), want.String())
	}
}

// hasLine checks that each of want starts a line of out.
func hasLine(t *testing.T, what, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w) && (w != "HANDLER_MAX_RECORD_AGE=" || l == w)
		}
		if !found {
			t.Errorf("got no line starting %q on %s:\n%s", w, what, out)
		}
	}
}

// TestRunConfigProblems checks that run reports the same problems as
// config, every one of them, before it connects to anything.
func TestRunConfigProblems(t *testing.T) {
	avsc := brokenAvsc(t)
	var stdout, stderr strings.Builder
	code := run([]string{"run"}, testEnv(t,
		"VALUE_FORMAT", "avro", "VALUE_SCHEMA_FILE", avsc,
		"KEY_FORMAT", "protobuf", "KEY_SCHEMA_FILE", protoSet, "KEY_PROTO_MESSAGE", "shop.v1.Missing",
		"BATCH_MAX_RECORD", "10", "OTEL_FOO_BAR", "x",
	), &stdout, &stderr)
	if code != exitConfig {
		t.Fatalf("got exit %d, want %d\n%s", code, exitConfig, stderr.String())
	}
	hasLine(t, "stderr", stderr.String(), []string{
		"invalid configuration:",
		`VALUE_SCHEMA_FILE="` + avsc + `": expected an Avro schema (.avsc) that parses`,
		`KEY_PROTO_MESSAGE="shop.v1.Missing": expected the full name of a message in KEY_SCHEMA_FILE`,
		"BATCH_MAX_RECORD: unknown variable; did you mean BATCH_MAX_RECORDS?",
		"warning: OTEL_FOO_BAR: an OpenTelemetry variable this service does not read; ignored",
	})
}

// TestRunLogsWarnings checks that run logs each warning once its logger
// exists. A compiled-in handler that cannot be built stops it (exit 2)
// after the logger is built and before anything connects.
func TestRunLogsWarnings(t *testing.T) {
	withFailingHandler(t)
	var stdout, stderr strings.Builder
	code := run([]string{"run"}, testEnv(t, "HANDLER", "broken", "KAFKA_LINGER", "5ms", "REDIS_URL", "redis://cache:6379", "METRICS_ADDR", "127.0.0.1:0"), &stdout, &stderr)
	if code != exitConfig {
		t.Fatalf("got exit %d, want %d\n%s", code, exitConfig, stderr.String())
	}
	for _, name := range []string{"KAFKA_LINGER", "REDIS_URL"} {
		n := 0
		for l := range strings.Lines(stderr.String()) {
			if strings.Contains(l, `"level":"warn"`) && strings.Contains(l, `"variable":"`+name+`"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("got %d warning log lines for %s, want one in:\n%s", n, name, stderr.String())
		}
	}
}

func TestLogWarnings(t *testing.T) {
	tests := []struct {
		name     string
		warnings config.Warnings
		want     []string
	}{
		{name: "none", warnings: nil, want: nil},
		{name: "one line each", warnings: config.Warnings{
			{Var: "KAFKA_LINGER", Message: "unknown variable in the service's KAFKA_ namespace; ignored"},
			{Var: "OTEL_SERVICE_NAME", Message: "set, but this version does not support it; ignored"},
		}, want: []string{
			"configuration: KAFKA_LINGER: unknown variable in the service's KAFKA_ namespace; ignored",
			"configuration: OTEL_SERVICE_NAME: set, but this version does not support it; ignored",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			logWarnings(zap.New(core), tt.warnings)
			entries := logs.AllUntimed()
			if len(entries) != len(tt.want) {
				t.Fatalf("got %d lines, want %d", len(entries), len(tt.want))
			}
			for i, e := range entries {
				if e.Level != zapcore.WarnLevel || e.Message != tt.want[i] || e.ContextMap()["variable"] != tt.warnings[i].Var {
					t.Errorf("got %s %q %v, want warn %q variable=%s", e.Level, e.Message, e.ContextMap(), tt.want[i], tt.warnings[i].Var)
				}
			}
		})
	}
}
