package config

import (
	"errors"
	"strings"
	"testing"
)

// wantDefaults is `consumer config` for an environment holding only the
// required variables and AWS_REGION.
const wantDefaults = `KAFKA_BROKERS=b-1.msk.example.com:9098,b-2.msk.example.com:9098
KAFKA_TOPICS=products
KAFKA_GROUP_ID=brands-sync-test
KAFKA_AUTH=iam
KAFKA_TLS=true
KAFKA_TLS_CA_FILE=
KAFKA_TLS_CERT_FILE=
KAFKA_TLS_KEY_FILE=
KAFKA_TLS_SERVER_NAME=
KAFKA_TLS_INSECURE_SKIP_VERIFY=false
KAFKA_SASL_USERNAME=
KAFKA_SASL_PASSWORD=
AWS_REGION=eu-west-1
KAFKA_IAM_ROLE_ARN=
KAFKA_IAM_SESSION_NAME=msk-consumer
KAFKA_CLIENT_ID=msk-consumer
KAFKA_START_OFFSET=earliest
KAFKA_SESSION_TIMEOUT=45s
KAFKA_HEARTBEAT_INTERVAL=3s
KAFKA_REBALANCE_TIMEOUT=1m0s
KAFKA_INSTANCE_ID=
KAFKA_GROUP_PROTOCOL=classic
KAFKA_GROUP_TYPE=consumer
STARTUP_TIMEOUT=2m0s
KAFKA_COMMIT_INTERVAL=5s
BATCH_MAX_RECORDS=500
BATCH_MAX_BYTES=4194304
BATCH_MAX_WAIT=3s
MAX_IN_FLIGHT_BATCHES=16
MAX_BUFFERED_BYTES=67108864
HANDLER_MAX_ATTEMPTS=3
HANDLER_RETRY_BACKOFF=200ms
HANDLER_RETRY_BACKOFF_MAX=10s
HANDLER_MAX_RECORD_AGE=
PROCESSING_ORDER=partition
PARTITION_CONCURRENCY=8
SHUTDOWN_TIMEOUT=30s
VALUE_FORMAT=json
KEY_FORMAT=string
VALUE_SCHEMA_FILE=
KEY_SCHEMA_FILE=
VALUE_PROTO_MESSAGE=
KEY_PROTO_MESSAGE=
VALUE_SCHEMA_REGISTRY=none
KEY_SCHEMA_REGISTRY=none
SCHEMA_REGISTRY_URL=
SCHEMA_REGISTRY_USERNAME=
SCHEMA_REGISTRY_PASSWORD=
HANDLER=log
HTTP_HANDLER_URL=
HTTP_HANDLER_TIMEOUT=30s
HTTP_HANDLER_AUTH_HEADER=
HTTP_HANDLER_BODY=batch
LAMBDA_FUNCTION_NAME=
LAMBDA_INVOKE_TIMEOUT=15m0s
EVENT_RECORD_FORMAT=source
KAFKA_CLUSTER_ARN=
DLQ_TOPIC=products.dlq  # unset: each topic dead-letters to <topic>.dlq
IDEMPOTENCY_STORE=none
IDEMPOTENCY_TTL=24h0m0s
IDEMPOTENCY_KEY=offset
IDEMPOTENCY_KEY_PREFIX=brands-sync-test  # unset: the group id
IDEMPOTENCY_IN_PROGRESS_TTL=40s  # unset: HTTP_HANDLER_TIMEOUT + 10s
REDIS_URL=
IDEMPOTENCY_TABLE=
METRICS_ADDR=:9090
LOG_LEVEL=info
LOG_FORMAT=json
UNREADY_AFTER=30s
OTEL_TRACES_EXPORTER=none
OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318  # unset: the collector on this host
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=
OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=
OTEL_EXPORTER_OTLP_HEADERS=
OTEL_EXPORTER_OTLP_TRACES_HEADERS=
OTEL_SERVICE_NAME=msk-consumer  # unset: service.name of OTEL_RESOURCE_ATTRIBUTES, else msk-consumer
OTEL_RESOURCE_ATTRIBUTES=
OTEL_TRACES_SAMPLER=parentbased_always_on
OTEL_TRACES_SAMPLER_ARG=
OTEL_PROPAGATORS=
OTEL_SDK_DISABLED=false
`

func TestPrintDefaults(t *testing.T) {
	c, err := Load(lookup(env()))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.Print(&b); err != nil {
		t.Fatalf("Print: got error %v, want nil", err)
	}
	if got := b.String(); got != wantDefaults {
		t.Errorf("got\n%s\nwant\n%s", got, wantDefaults)
	}
}

// TestPrintOrder checks that Print names every variable once, in the order
// problems are sorted in.
func TestPrintOrder(t *testing.T) {
	var got []string
	for line := range strings.Lines(wantDefaults) {
		name, _, _ := strings.Cut(line, "=")
		got = append(got, name)
	}
	if len(got) != len(varOrder) {
		t.Fatalf("got %d lines, want %d", len(got), len(varOrder))
	}
	for i := range got {
		if got[i] != varOrder[i] {
			t.Errorf("line %d: got %s, want %s", i+1, got[i], varOrder[i])
		}
	}
}

func TestPrintLines(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // lines that must appear
	}{
		{name: "dlq per topic when unset", env: env("KAFKA_TOPICS", "products,prices"), want: []string{"DLQ_TOPIC=products.dlq,prices.dlq  # unset: each topic dead-letters to <topic>.dlq"}},
		{name: "dlq when set", env: env("KAFKA_TOPICS", "products,prices", "DLQ_TOPIC", "dead-letters"), want: []string{"DLQ_TOPIC=dead-letters"}},
		{name: "region from AWS_DEFAULT_REGION", env: without(env("AWS_DEFAULT_REGION", "us-east-2"), "AWS_REGION"), want: []string{"AWS_REGION=us-east-2"}},
		{name: "secrets redacted", env: env("KAFKA_AUTH", "scram-sha-256", "KAFKA_SASL_USERNAME", "svc", "KAFKA_SASL_PASSWORD", "pw", "SCHEMA_REGISTRY_USERNAME", "sr", "SCHEMA_REGISTRY_PASSWORD", "srpw", "HTTP_HANDLER_AUTH_HEADER", "Bearer t"), want: []string{
			"KAFKA_SASL_USERNAME=svc",
			"KAFKA_SASL_PASSWORD=<redacted>",
			"SCHEMA_REGISTRY_USERNAME=sr",
			"SCHEMA_REGISTRY_PASSWORD=<redacted>",
			"HTTP_HANDLER_AUTH_HEADER=<redacted>",
		}},
		{name: "url passwords redacted", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "https://user:pw@api.example.com/b", "SCHEMA_REGISTRY_URL", "http://sr:pw@registry:8081"), want: []string{
			"HTTP_HANDLER_URL=https://user:xxxxx@api.example.com/b",
			"SCHEMA_REGISTRY_URL=http://sr:xxxxx@registry:8081",
		}},
		{name: "url query values redacted", env: env("HANDLER", "http", "HTTP_HANDLER_URL", "https://h/x?token=secret&a=b", "SCHEMA_REGISTRY_URL", "https://u:pw@registry:8081/?apikey=k1#frag"), want: []string{
			"HTTP_HANDLER_URL=https://h/x?token=REDACTED&a=REDACTED",
			"SCHEMA_REGISTRY_URL=https://u:xxxxx@registry:8081/?apikey=REDACTED#REDACTED",
		}},
		{name: "overrides", env: env("KAFKA_AUTH", "none", "BATCH_MAX_WAIT", "1500ms", "MAX_BUFFERED_BYTES", "8388608", "KAFKA_COMMIT_INTERVAL", "2s", "UNREADY_AFTER", "90s", "LOG_LEVEL", "DEBUG"), want: []string{
			"KAFKA_AUTH=none",
			"KAFKA_TLS=false",
			"BATCH_MAX_WAIT=1.5s",
			"MAX_BUFFERED_BYTES=8388608",
			"KAFKA_COMMIT_INTERVAL=2s",
			"UNREADY_AFTER=1m30s",
			"LOG_LEVEL=debug",
		}},
		{name: "startup timeout and record age", env: env("STARTUP_TIMEOUT", "90s", "HANDLER_MAX_RECORD_AGE", "24h"), want: []string{
			"STARTUP_TIMEOUT=1m30s",
			"HANDLER_MAX_RECORD_AGE=24h0m0s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := c.Print(&b); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(b.String(), "\n")
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || l == w
				}
				if !found {
					t.Errorf("got no line %q in\n%s", w, b.String())
				}
			}
		})
	}
}

func TestPrintWriteError(t *testing.T) {
	want := errors.New("disk full")
	err := Config{}.Print(failingWriter{want})
	if !errors.Is(err, want) {
		t.Errorf("got %v, want %v", err, want)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestSecretsNeverShown sets each secret to a distinctive string, provokes
// problems about the secrets and the URLs that carry passwords, and checks
// that neither Error() nor Print shows them.
func TestSecretsNeverShown(t *testing.T) {
	secrets := []string{"sasl-s3cret", "registry-s3cret", "header-t0ken", "url-pa55", "reg-url-pa55", "query-t0ken", "reg-query-k3y", "frag-t0ken"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{name: "valid", env: env(
			"KAFKA_AUTH", "scram-sha-512",
			"KAFKA_SASL_USERNAME", "svc",
			"KAFKA_SASL_PASSWORD", "sasl-s3cret",
			"VALUE_SCHEMA_REGISTRY", "confluent",
			"SCHEMA_REGISTRY_URL", "https://sr:reg-url-pa55@registry.example.com?key=reg-query-k3y",
			"SCHEMA_REGISTRY_USERNAME", "sr",
			"SCHEMA_REGISTRY_PASSWORD", "registry-s3cret",
			"HANDLER", "http",
			"HTTP_HANDLER_URL", "https://u:url-pa55@api.example.com/b?token=query-t0ken#access_token=frag-t0ken",
			"HTTP_HANDLER_AUTH_HEADER", "Bearer header-t0ken",
		)},
		{name: "invalid", wantErr: true, env: env(
			// iam: the SASL password is set but unused, a problem.
			"KAFKA_SASL_PASSWORD", "sasl-s3cret",
			"SCHEMA_REGISTRY_URL", "ftp://sr:reg-url-pa55@registry.example.com/?reg-query-k3y",
			"SCHEMA_REGISTRY_PASSWORD", "registry-s3cret",
			"HANDLER", "http",
			"HTTP_HANDLER_URL", "gopher://u:url-pa55@api.example.com?token=query-t0ken",
			"HTTP_HANDLER_AUTH_HEADER", "Bearer header-t0ken\n",
		)},
		{name: "unparsable url", wantErr: true, env: env(
			"HANDLER", "http",
			"HTTP_HANDLER_URL", "http://u:url-pa55@api example.com/%zz?token=query-t0ken",
		)},
		{name: "url without host", wantErr: true, env: env(
			"HANDLER", "http",
			"HTTP_HANDLER_URL", "https:///hook?token=query-t0ken&sig=frag-t0ken",
			"SCHEMA_REGISTRY_URL", "registry.example.com?key=reg-query-k3y",
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			var out strings.Builder
			if err := c.Print(&out); err != nil {
				t.Fatal(err)
			}
			shown := out.String()
			if err != nil {
				shown += "\n" + err.Error()
				// Callers may log problems field by field, not via Error().
				for _, p := range problems(t, err) {
					shown += "\n" + p.Value + " " + p.Expected
				}
			}
			for _, s := range secrets {
				if strings.Contains(shown, s) {
					t.Errorf("got secret %q in output:\n%s", s, shown)
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "empty", raw: "", want: ""},
		{name: "plain", raw: "https://api.example.com/b", want: "https://api.example.com/b"},
		{name: "query values", raw: "https://h/x?token=secret&a=b", want: "https://h/x?token=REDACTED&a=REDACTED"},
		{name: "key order kept", raw: "https://h/?z=1&a=2&z=3", want: "https://h/?z=REDACTED&a=REDACTED&z=REDACTED"},
		{name: "empty value", raw: "https://h/?debug=", want: "https://h/?debug=REDACTED"},
		{name: "value with equals", raw: "https://h/?sig=a=b==", want: "https://h/?sig=REDACTED"},
		{name: "bare element", raw: "https://h/?s3cr3t", want: "https://h/?REDACTED"},
		{name: "escaped value", raw: "https://h/?t=%2Fsecret%3D", want: "https://h/?t=REDACTED"},
		{name: "password and query", raw: "https://u:pw@h/?t=s", want: "https://u:xxxxx@h/?t=REDACTED"},
		{name: "fragment", raw: "https://h/cb#access_token=s", want: "https://h/cb#REDACTED"},
		{name: "trailing question mark", raw: "https://h/x?", want: "https://h/x?"},
		{name: "no scheme", raw: "h/x?token=s", want: "h/x?token=REDACTED"},
		{name: "unparsable", raw: "http://u:pw@h x/?t=s", want: "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactURL(tt.raw); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// Problems are redacted when made and again when rendered.
			if got := RedactURL(RedactURL(tt.raw)); got != tt.want {
				t.Errorf("redacted twice: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSecretProblemsNamed checks that hiding a secret's value does not hide
// the problem: each secret that is wrong is still named.
func TestSecretProblemsNamed(t *testing.T) {
	_, err := Load(lookup(env(
		"SCHEMA_REGISTRY_PASSWORD", "registry-s3cret",
		"HTTP_HANDLER_AUTH_HEADER", "Bearer header-t0ken\r\n",
	)))
	want := "SCHEMA_REGISTRY_USERNAME: required with SCHEMA_REGISTRY_PASSWORD: set both for basic auth, or neither\n" +
		"HTTP_HANDLER_AUTH_HEADER: expected a single-line header value (check for a trailing newline)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
