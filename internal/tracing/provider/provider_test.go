package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/tracing/tracingtest"
)

// load returns the tracing configuration of kv, as Load reads it.
func load(t *testing.T, kv ...string) config.Tracing {
	t.Helper()
	m := map[string]string{"KAFKA_BROKERS": "b:9092", "KAFKA_TOPICS": "t", "KAFKA_GROUP_ID": "g", "KAFKA_AUTH": "none"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	c, err := config.Load(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return c.Tracing
}

func TestOff(t *testing.T) {
	p, warn, err := New(context.Background(), load(t), Options{})
	if p != nil || warn != nil || err != nil {
		t.Fatalf("got %v, %v, %v, want nothing with tracing off", p, warn, err)
	}
	if p.TracerProvider() != nil || p.Shutdown(context.Background()) != nil {
		t.Fatal("got a provider from a nil Provider")
	}
}

// TestOTLPHTTP sends a span with a link per record of a large batch to an
// in-process receiver, with the headers and resource of the configuration.
func TestOTLPHTTP(t *testing.T) {
	for _, proto := range []string{"http/protobuf"} { // http/json is the SDK's own encoding of the same
		t.Run(proto, func(t *testing.T) {
			rcv := tracingtest.NewReceiver(t)
			cfg := load(t, "OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL,
				"OTEL_EXPORTER_OTLP_PROTOCOL", proto,
				"OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20ecret", "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,service.name=orders")
			p, warn, err := New(context.Background(), cfg, Options{Version: "1.2.3", MaxLinks: 500, Detectors: []resource.Detector{}})
			if err != nil || warn != nil {
				t.Fatal(err, warn)
			}
			tr := p.TracerProvider().Tracer("test")
			links := make([]trace.Link, 300)
			for i := range links {
				links[i] = trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
					TraceID: trace.TraceID{1, byte(i), byte(i >> 8)}, SpanID: trace.SpanID{2, byte(i)}, TraceFlags: trace.FlagsSampled, Remote: true,
				})}
			}
			_, s := tr.Start(context.Background(), "process t", trace.WithLinks(links...))
			s.End()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			spans := rcv.Spans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans, want 1", len(spans))
			}
			sp := spans[0]
			if len(sp.Links) != 300 {
				t.Errorf("got %d links, want all 300 (MaxLinks 500)", len(sp.Links))
			}
			for k, want := range map[string]string{"service.name": "orders", "service.version": "1.2.3", "deployment.environment.name": "test", "telemetry.sdk.language": "go"} {
				if got := sp.Resource[k]; got != want {
					t.Errorf("resource %s: got %q, want %q", k, got, want)
				}
			}
			if got := rcv.Headers()[0].Get("X-Api-Key"); got != "s ecret" {
				t.Errorf("got header %q, want the decoded value", got)
			}
		})
	}
}

func TestConsole(t *testing.T) {
	var out bytes.Buffer
	p, _, err := New(context.Background(), load(t, "OTEL_TRACES_EXPORTER", "console", "OTEL_SERVICE_NAME", "demo"), Options{Stdout: &out, Detectors: []resource.Detector{}})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.TracerProvider().Tracer("test").Start(context.Background(), "process products")
	s.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name     string
		Resource []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	line, _, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(line), &doc); err != nil {
		t.Fatalf("got %q: %v, want one JSON document per line", out.String(), err)
	}
	if doc.Name != "process products" {
		t.Errorf("got span %q, want process products", doc.Name)
	}
	found := false
	for _, kv := range doc.Resource {
		found = found || (kv.Key == "service.name" && kv.Value.Value == "demo")
	}
	if !found {
		t.Errorf("got resource %v, want service.name demo", doc.Resource)
	}
}

func TestSampler(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{want: "ParentBased{root:AlwaysOnSampler"},
		{env: []string{"OTEL_TRACES_SAMPLER", "always_off"}, want: "AlwaysOffSampler"},
		{env: []string{"OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.25"}, want: "TraceIDRatioBased{0.25}"},
		{env: []string{"OTEL_TRACES_SAMPLER", "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.5"}, want: "ParentBased{root:TraceIDRatioBased{0.5}"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s, err := sampler(load(t, append([]string{"OTEL_TRACES_EXPORTER", "console"}, tt.env...)...))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s.Description(), tt.want) {
				t.Errorf("got %s, want %s...", s.Description(), tt.want)
			}
		})
	}
}

func TestEKSDetector(t *testing.T) {
	env := map[string]string{
		"KUBERNETES_SERVICE_HOST":     "172.20.0.1",
		"HOSTNAME":                    "consumer-7d9f8b6c5-x2x7q",
		"AWS_REGION":                  "eu-west-1",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
	}
	d := &eksDetector{
		lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		readFile: func(p string) ([]byte, error) {
			if p == namespaceFile {
				return []byte("brands\n"), nil
			}
			return nil, errors.New("no such file")
		},
	}
	res, err := d.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	want := map[string]string{"k8s.pod.name": "consumer-7d9f8b6c5-x2x7q", "k8s.namespace.name": "brands",
		"cloud.provider": "aws", "cloud.platform": "aws_eks", "cloud.region": "eu-west-1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}

	delete(env, "KUBERNETES_SERVICE_HOST")
	if res, _ := d.Detect(context.Background()); res.Len() != 0 {
		t.Errorf("got %v outside Kubernetes, want nothing", res)
	}
}

// TestDetectorFailureIsAWarning: a detector that fails (an ECS metadata
// endpoint that does not answer) costs its attributes, not the service.
func TestDetectorFailureIsAWarning(t *testing.T) {
	p, warn, err := New(context.Background(), load(t, "OTEL_TRACES_EXPORTER", "console"), Options{
		Stdout: &bytes.Buffer{}, Detectors: []resource.Detector{failing{}},
	})
	if err != nil || warn == nil || p == nil {
		t.Fatalf("got %v, %v, %v, want a provider and a warning", p, warn, err)
	}
	_ = p.Shutdown(context.Background())
}

type failing struct{}

func (failing) Detect(context.Context) (*resource.Resource, error) {
	return nil, errors.New("ECS task metadata: connection refused")
}
