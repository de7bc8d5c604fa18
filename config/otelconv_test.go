package config

import (
	"slices"
	"strings"
	"testing"
)

// TestOTelConventions checks the OpenTelemetry variables the issue 22 §11
// asks to honour: OTEL_SDK_DISABLED turns tracing off whatever the
// exporter, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL wins over
// OTEL_EXPORTER_OTLP_PROTOCOL, and OTEL_PROPAGATORS chooses the
// propagators.
func TestOTelConventions(t *testing.T) {
	tests := []struct {
		name        string
		kv          []string
		enabled     bool
		protocol    OTLPProtocol
		endpoint    string
		propagators []string
	}{
		{name: "defaults", kv: []string{"OTEL_TRACES_EXPORTER", "otlp"}, enabled: true, protocol: ProtocolHTTPProtobuf,
			endpoint: "http://localhost:4318/v1/traces", propagators: []string{"tracecontext"}},
		{name: "sdk disabled", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "true"}, enabled: false,
			protocol: ProtocolHTTPProtobuf, endpoint: "http://localhost:4318/v1/traces", propagators: []string{"tracecontext"}},
		{name: "sdk disabled false", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_SDK_DISABLED", "false"}, enabled: true,
			protocol: ProtocolHTTPProtobuf, endpoint: "http://localhost:4318/v1/traces", propagators: []string{"tracecontext"}},
		{name: "traces protocol wins", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"},
			enabled: true, protocol: ProtocolGRPC, endpoint: "http://localhost:4317", propagators: []string{"tracecontext"}},
		{name: "propagators", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_PROPAGATORS", "tracecontext, baggage"}, enabled: true,
			protocol: ProtocolHTTPProtobuf, endpoint: "http://localhost:4318/v1/traces", propagators: []string{"tracecontext", "baggage"}},
		{name: "no propagation", kv: []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_PROPAGATORS", "none"}, enabled: true,
			protocol: ProtocolHTTPProtobuf, endpoint: "http://localhost:4318/v1/traces", propagators: []string{"none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(env(tt.kv...)))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Tracing.Enabled(); got != tt.enabled {
				t.Errorf("enabled: got %v, want %v", got, tt.enabled)
			}
			if got := c.Tracing.Transport(); got != tt.protocol {
				t.Errorf("protocol: got %q, want %q", got, tt.protocol)
			}
			if got := c.Tracing.OTLPEndpoint(); got != tt.endpoint {
				t.Errorf("endpoint: got %q, want %q", got, tt.endpoint)
			}
			if got := c.Tracing.PropagatorNames(); !slices.Equal(got, tt.propagators) {
				t.Errorf("propagators: got %q, want %q", got, tt.propagators)
			}
		})
	}

	for _, tt := range []struct {
		kv   []string
		want string
	}{
		{kv: []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"}, want: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="thrift": expected http/protobuf, http/json or grpc`},
		{kv: []string{"OTEL_PROPAGATORS", "tracecontext,b3"}, want: `OTEL_PROPAGATORS="b3": expected tracecontext, baggage or none`},
		{kv: []string{"OTEL_SDK_DISABLED", "yes"}, want: `OTEL_SDK_DISABLED="yes": expected true, false, 1 or 0`},
	} {
		_, err := Load(lookup(env(append([]string{"OTEL_TRACES_EXPORTER", "otlp"}, tt.kv...)...)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.kv, err, tt.want)
		}
	}
}
