package config

import (
	"slices"
	"strings"
	"testing"
)

func TestOSADistance(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{name: "equal", a: "KAFKA_TOPICS", b: "KAFKA_TOPICS", want: 0},
		{name: "empty", a: "", b: "ABC", want: 3},
		{name: "deletion", a: "KAFKA_TOPIC", b: "KAFKA_TOPICS", want: 1},
		{name: "insertion", a: "KAFKA_TOPICSS", b: "KAFKA_TOPICS", want: 1},
		{name: "substitution", a: "KAFKA-TOPICS", b: "KAFKA_TOPICS", want: 1},
		{name: "swap is one edit", a: "KAFAK_TOPICS", b: "KAFKA_TOPICS", want: 1},
		{name: "swap and deletion", a: "KAFAK_TOPIC", b: "KAFKA_TOPICS", want: 2},
		{name: "no substring edited twice", a: "CA", b: "ABC", want: 3},
		{name: "far", a: "HOSTNAME", b: "HANDLER", want: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := osaDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
			if got := osaDistance(tt.b, tt.a); got != tt.want {
				t.Errorf("reversed: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	tests := []struct {
		name         string
		environ      []string
		wantProblems []string // Error() lines
		wantWarnings []string // String() of each warning
	}{
		{name: "known names", environ: []string{"KAFKA_BROKERS=b:9092", "HANDLER_MAX_ATTEMPTS=5", "AWS_DEFAULT_REGION=eu-west-1", "STARTUP_TIMEOUT=1m", "HANDLER_MAX_RECORD_AGE=1h"}},
		{name: "missing plural", environ: []string{"HANDLER_MAX_ATTEMPT=5"}, wantProblems: []string{"HANDLER_MAX_ATTEMPT: unknown variable; did you mean HANDLER_MAX_ATTEMPTS?"}},
		{name: "batch max record", environ: []string{"BATCH_MAX_RECORD=10"}, wantProblems: []string{"BATCH_MAX_RECORD: unknown variable; did you mean BATCH_MAX_RECORDS?"}},
		{name: "kafka topic", environ: []string{"KAFKA_TOPIC=products"}, wantProblems: []string{"KAFKA_TOPIC: unknown variable; did you mean KAFKA_TOPICS?"}},
		{name: "two edits", environ: []string{"KAFKA_BRKER=x"}, wantProblems: []string{"KAFKA_BRKER: unknown variable; did you mean KAFKA_BROKERS?"}},
		{name: "swap and deletion", environ: []string{"KAFAK_TOPIC=x"}, wantProblems: []string{"KAFAK_TOPIC: unknown variable; did you mean KAFKA_TOPICS?"}},
		{name: "wrong case", environ: []string{"kafka_brokers=b:9092"}, wantProblems: []string{"kafka_brokers: unknown variable (names are case-sensitive); did you mean KAFKA_BROKERS?"}},
		{name: "short name", environ: []string{"HANDLERS=http"}, wantProblems: []string{"HANDLERS: unknown variable; did you mean HANDLER?"}},
		{name: "misspelt secret shows no value", environ: []string{"KAFKA_SASL_PASWORD=hunter2"}, wantProblems: []string{"KAFKA_SASL_PASWORD: unknown variable; did you mean KAFKA_SASL_PASSWORD?"}},
		{name: "three edits in a namespace", environ: []string{"KAFKA_TOPICS_LIST=x"}, wantWarnings: []string{"KAFKA_TOPICS_LIST: unknown variable in the service's KAFKA_ namespace; ignored"}},
		{name: "longest namespace", environ: []string{"HTTP_HANDLER_RETRIES=3"}, wantWarnings: []string{"HTTP_HANDLER_RETRIES: unknown variable in the service's HTTP_HANDLER_ namespace; ignored"}},
		{name: "outside the namespaces", environ: []string{"FOO=1", "AWS_PROFILE=x", "DATABASE_URL=postgres://u:p@h/db"}},
		{name: "service links", environ: []string{
			"KAFKA_PORT=tcp://10.0.0.1:9092", "KAFKA_PORT_9092_TCP_ADDR=10.0.0.1", "KAFKA_SERVICE_HOST=10.0.0.1",
			"KAFKA_SERVICE_PORT=9092", "KAFKA_SERVICE_PORT_BROKER=9092", "METRICS_PORT=tcp://10.0.0.2:9090",
			"HANDLER_SERVICE_HOST=10.0.0.3", "DLQ_PORT_80_TCP_PROTO=tcp",
		}},
		{name: "tracing variables are supported", environ: []string{
			"OTEL_SERVICE_NAME=consumer", "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_HEADERS=k=v",
		}},
		{name: "variables the OpenTelemetry SDK reads itself", environ: []string{
			"OTEL_EXPORTER_OTLP_TIMEOUT=5000", "OTEL_BSP_SCHEDULE_DELAY=1000", "OTEL_SPAN_LINK_COUNT_LIMIT=1000",
		}},
		{name: "other OpenTelemetry variables warn", environ: []string{
			"OTEL_METRICS_EXPORTER=otlp", "OTEL_LOGS_EXPORTER=otlp",
		}, wantWarnings: []string{
			"OTEL_LOGS_EXPORTER: an OpenTelemetry variable this service does not read; ignored",
			"OTEL_METRICS_EXPORTER: an OpenTelemetry variable this service does not read; ignored",
		}},
		{name: "a near miss of a tracing variable warns, never stops", environ: []string{"OTEL_TRACE_EXPORTER=otlp"}, wantWarnings: []string{
			"OTEL_TRACE_EXPORTER: unknown OpenTelemetry variable, ignored; did you mean OTEL_TRACES_EXPORTER?",
		}},
		{name: "processing order is supported", environ: []string{"PROCESSING_ORDER=key", "PARTITION_CONCURRENCY=8"}},
		{name: "group protocol is supported", environ: []string{"KAFKA_GROUP_PROTOCOL=consumer"}},
		{name: "group protocol typo", environ: []string{"KAFKA_GROUP_PROTOCL=consumer"}, wantProblems: []string{"KAFKA_GROUP_PROTOCL: unknown variable; did you mean KAFKA_GROUP_PROTOCOL?"}},
		{name: "idempotency variables are supported", environ: []string{
			"REDIS_URL=redis://u:secret@h:6379", "IDEMPOTENCY_TTL=24h", "IDEMPOTENCY_STORE=redis",
		}},
		{name: "idempotency typo", environ: []string{"IDEMPOTENCY_STOR=redis"}, wantProblems: []string{"IDEMPOTENCY_STOR: unknown variable; did you mean IDEMPOTENCY_STORE?"}},
		{name: "idempotency namespace", environ: []string{"IDEMPOTENCY_REDIS_HOST=h"}, wantWarnings: []string{"IDEMPOTENCY_REDIS_HOST: unknown variable in the service's IDEMPOTENCY_ namespace; ignored"}},
		{name: "processing order typo", environ: []string{"PROCESSING_ORDERS=key"}, wantProblems: []string{
			"PROCESSING_ORDERS: unknown variable; did you mean PROCESSING_ORDER?",
		}},
		{name: "every problem, sorted by name", environ: []string{"KAFKA_TOPIC=a", "BATCH_MAX_RECORD=1", "KAFKA_TOPIC=b", "LOG_LEVEL=info"}, wantProblems: []string{
			"BATCH_MAX_RECORD: unknown variable; did you mean BATCH_MAX_RECORDS?",
			"KAFKA_TOPIC: unknown variable; did you mean KAFKA_TOPICS?",
		}},
		{name: "bare names and oddities", environ: []string{"KAFKA_TOPIC", "=C:=C:\\", ""}, wantProblems: []string{"KAFKA_TOPIC: unknown variable; did you mean KAFKA_TOPICS?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, err := CheckNames(tt.environ)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
				problems(t, err) // an Errors, like Load's
			}
			if !slices.Equal(got, tt.wantProblems) {
				t.Errorf("got problems %q, want %q", got, tt.wantProblems)
			}
			var gotW []string
			for _, w := range warnings {
				gotW = append(gotW, w.String())
			}
			if !slices.Equal(gotW, tt.wantWarnings) {
				t.Errorf("got warnings %q, want %q", gotW, tt.wantWarnings)
			}
		})
	}
}

// TestUnsupportedNeverProblems checks that no contract variable this
// version ignores is taken for a typo of one it reads.
func TestUnsupportedNeverProblems(t *testing.T) {
	for _, name := range append(slices.Clone(unsupportedVars), "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_INSECURE") {
		t.Run(name, func(t *testing.T) {
			warnings, err := CheckNames([]string{name + "=x"})
			if err != nil {
				t.Errorf("got problem %v, want none", err)
			}
			if len(warnings) != 1 {
				t.Errorf("got warnings %v, want one", warnings)
			}
		})
	}
}

// ecsEnviron and eksEnviron are what the platforms put into a container
// besides the task's or pod's own variables, with prod.env's configuration.
var (
	ecsEnviron = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=ip-10-0-1-23.eu-west-1.compute.internal",
		"HOME=/root",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/0f3c9c5e",
		"AWS_EXECUTION_ENV=AWS_ECS_FARGATE",
		"AWS_DEFAULT_REGION=eu-west-1",
		"AWS_REGION=eu-west-1",
		"ECS_CONTAINER_METADATA_URI=http://169.254.170.2/v3/abc",
		"ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/abc",
		"ECS_AGENT_URI=http://169.254.170.2/api/abc",
		"GOMEMLIMIT=900MiB",
		"GOGC=100",
		"GOMAXPROCS=2",
	}
	eksEnviron = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=consumer-7d9f8b6c5-x2x7q",
		"HOME=/home/nonroot",
		"AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/msk-consumer",
		"AWS_STS_REGIONAL_ENDPOINTS=regional",
		"AWS_DEFAULT_REGION=eu-west-1",
		"AWS_REGION=eu-west-1",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
		"KUBERNETES_SERVICE_HOST=172.20.0.1",
		"KUBERNETES_SERVICE_PORT=443",
		"KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://172.20.0.1:443",
		"KUBERNETES_PORT_443_TCP=tcp://172.20.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443",
		"KUBERNETES_PORT_443_TCP_ADDR=172.20.0.1",
		"KAFKA_UI_SERVICE_HOST=172.20.4.4",
		"KAFKA_UI_PORT_8080_TCP_ADDR=172.20.4.4",
		"POD_NAME=consumer-7d9f8b6c5-x2x7q",
		"POD_NAMESPACE=brands",
		"GOMEMLIMIT=900MiB",
		"GOMAXPROCS=2",
		"OTEL_SERVICE_NAME=msk-consumer",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317",
		"OTEL_RESOURCE_ATTRIBUTES=k8s.pod.name=consumer-7d9f8b6c5-x2x7q",
	}
	prodEnviron = []string{
		"KAFKA_BROKERS=b-1.prod.kafka.eu-west-1.amazonaws.com:9098,b-2.prod.kafka.eu-west-1.amazonaws.com:9098",
		"KAFKA_TOPICS=products",
		"KAFKA_GROUP_ID=brands-sync-prod",
		"AWS_REGION=eu-west-1",
		"KAFKA_INSTANCE_ID=consumer-0",
		"HANDLER=http",
		"HTTP_HANDLER_URL=https://brands.internal/batches",
		"LOG_LEVEL=info",
	}
)

// TestPlatformEnvironNotFlagged loads a realistic ECS and EKS environment:
// none of what the platform sets is a problem, and the only warnings are
// for the OTEL_* variables this service does not read.
func TestPlatformEnvironNotFlagged(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
	}{
		{name: "ecs fargate", environ: append(slices.Clone(ecsEnviron), prodEnviron...)},
		{name: "eks", environ: append(slices.Clone(eksEnviron), prodEnviron...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := LoadEnviron(tt.environ)
			if err != nil {
				t.Fatalf("got problems\n%v\nwant none", err)
			}
			for _, w := range warnings {
				if !strings.HasPrefix(w.Var, "OTEL_") || !strings.Contains(w.Message, "does not read") {
					t.Errorf("got warning %q, want none but for OTEL_* variables the service does not read", w)
				}
			}
		})
	}
}

func TestLoadEnviron(t *testing.T) {
	tests := []struct {
		name         string
		environ      []string
		wantProblems []string // Error() lines
		wantWarnings []string // variables warned about
		wantGroup    string
	}{
		{name: "valid", environ: prodEnviron, wantGroup: "brands-sync-prod"},
		{name: "first of a duplicate counts", environ: append(slices.Clone(prodEnviron), "KAFKA_GROUP_ID=other"), wantGroup: "brands-sync-prod"},
		{name: "value with equals", environ: append(slices.Clone(prodEnviron), "HTTP_HANDLER_URL=https://h/b?x=1"), wantGroup: "brands-sync-prod"},
		{name: "typos listed with the other problems", environ: []string{
			"KAFKA_BROKERS=b:9092", "KAFKA_TOPIC=products", "KAFKA_GROUP_ID=g", "AWS_REGION=eu-west-1",
			"HANDLER_MAX_ATTEMPT=5", "BATCH_MAX_WAIT=soon", "KAFKA_LINGER=5ms",
		}, wantProblems: []string{
			"KAFKA_TOPICS: required: comma-separated list of topics",
			`BATCH_MAX_WAIT="soon": expected a Go duration > 0, such as 250ms, 3s or 2m`,
			"HANDLER_MAX_ATTEMPT: unknown variable; did you mean HANDLER_MAX_ATTEMPTS?",
			"KAFKA_TOPIC: unknown variable; did you mean KAFKA_TOPICS?",
		}, wantWarnings: []string{"KAFKA_LINGER"}, wantGroup: "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warnings, err := LoadEnviron(tt.environ)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
				problems(t, err)
			}
			if !slices.Equal(got, tt.wantProblems) {
				t.Errorf("got problems %q, want %q", got, tt.wantProblems)
			}
			var gotW []string
			for _, w := range warnings {
				gotW = append(gotW, w.Var)
			}
			if !slices.Equal(gotW, tt.wantWarnings) {
				t.Errorf("got warnings about %q, want %q", gotW, tt.wantWarnings)
			}
			if c.Kafka.GroupID != tt.wantGroup {
				t.Errorf("got group %q, want %q", c.Kafka.GroupID, tt.wantGroup)
			}
		})
	}
}

func TestErrorsErr(t *testing.T) {
	tests := []struct {
		name string
		errs Errors
		want string // "" for a nil error
	}{
		{name: "nil", errs: nil},
		{name: "empty", errs: Errors{}},
		{name: "sorted", errs: Errors{{Var: "KAFKA_TOPC", Expected: "x"}, {Var: "LOG_LEVEL", Expected: "y"}, {Var: "KAFKA_BROKERS", Expected: "z"}},
			want: "KAFKA_BROKERS: z\nLOG_LEVEL: y\nKAFKA_TOPC: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.errs.Err()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
