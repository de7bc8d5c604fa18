package config

import (
	"slices"
	"strings"
	"testing"
)

func TestTracingInvalid(t *testing.T) {
	on := func(kv ...string) map[string]string {
		return env(append([]string{"OTEL_TRACES_EXPORTER", "otlp"}, kv...)...)
	}
	tests := []struct {
		name     string
		env      map[string]string
		want     []string
		contains string
		hidden   string // must not appear in the error: a secret
	}{
		{name: "exporter unknown", env: env("OTEL_TRACES_EXPORTER", "jaeger"), want: []string{"OTEL_TRACES_EXPORTER"}, contains: "expected none, otlp or console"},
		{name: "endpoint not a URL", env: on("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"), want: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}, contains: "absolute http or https URL"},
		{name: "traces endpoint not a URL", env: on("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/v1/traces"), want: []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}},
		{name: "protocol unknown", env: on("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), want: []string{"OTEL_EXPORTER_OTLP_PROTOCOL"}, contains: "expected http/protobuf, http/json or grpc"},
		{name: "headers without =", env: on("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=ok,SECRETTOKEN"), want: []string{"OTEL_EXPORTER_OTLP_HEADERS"}, contains: "pair 2 has no key=", hidden: "SECRETTOKEN"},
		{name: "headers bad escape", env: on("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-api-key=SECRET%zz"), want: []string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS"}, contains: "bad %-escape", hidden: "SECRET"},
		{name: "resource attributes without =", env: on("OTEL_RESOURCE_ATTRIBUTES", "team"), want: []string{"OTEL_RESOURCE_ATTRIBUTES"}},
		{name: "sampler unknown", env: on("OTEL_TRACES_SAMPLER", "xray"), want: []string{"OTEL_TRACES_SAMPLER"}},
		{name: "sampler arg out of range", env: on("OTEL_TRACES_SAMPLER_ARG", "10"), want: []string{"OTEL_TRACES_SAMPLER_ARG"}, contains: "from 0 to 1"},
		{name: "sampler arg not a number", env: on("OTEL_TRACES_SAMPLER_ARG", "half"), want: []string{"OTEL_TRACES_SAMPLER_ARG"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(lookup(tt.env))
			if err == nil {
				t.Fatalf("got nil, want problems with %v", tt.want)
			}
			if got := varsOf(problems(t, err)); !slices.Equal(got, tt.want) {
				t.Errorf("got problems with %v, want %v: %v", got, tt.want, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("got %q, want it to contain %q", err, tt.contains)
			}
			if tt.hidden != "" && strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("got %q, want the secret left out", err)
			}
		})
	}
}

// TestTracingOffNotChecked: platforms set OTEL_* in every container; with
// tracing off, a value meant for another SDK must not stop the service.
func TestTracingOffNotChecked(t *testing.T) {
	_, err := Load(lookup(env(
		"OTEL_TRACES_SAMPLER", "xray", "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "OTEL_RESOURCE_ATTRIBUTES", "bad",
	)))
	if err != nil {
		t.Fatalf("got %v, want nil with OTEL_TRACES_EXPORTER unset", err)
	}
}

func TestTracingValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		got  func(Tracing) any
		want any
	}{
		{name: "off by default", env: env(), got: func(t Tracing) any { return t.Enabled() }, want: false},
		{name: "console", env: env("OTEL_TRACES_EXPORTER", "Console"), got: func(t Tracing) any { return t.Exporter }, want: ExporterConsole},
		{name: "default endpoint", env: env("OTEL_TRACES_EXPORTER", "otlp"), got: func(t Tracing) any { return t.OTLPEndpoint() }, want: "http://localhost:4318/v1/traces"},
		{name: "grpc default endpoint", env: env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), got: func(t Tracing) any { return t.OTLPEndpoint() }, want: "http://localhost:4317"},
		{name: "base endpoint", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io/"), got: func(t Tracing) any { return t.OTLPEndpoint() }, want: "https://api.honeycomb.io/v1/traces"},
		{name: "traces endpoint wins", env: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"), got: func(t Tracing) any { return t.OTLPEndpoint() }, want: "http://b:4318/custom"},
		{name: "service name default", env: env(), got: func(t Tracing) any { return t.Service() }, want: "msk-consumer"},
		{name: "service name from attributes", env: env("OTEL_RESOURCE_ATTRIBUTES", "service.name=orders,team=x"), got: func(t Tracing) any { return t.Service() }, want: "orders"},
		{name: "service name wins", env: env("OTEL_SERVICE_NAME", "brands", "OTEL_RESOURCE_ATTRIBUTES", "service.name=orders"), got: func(t Tracing) any { return t.Service() }, want: "brands"},
		{name: "ratio default", env: env(), got: func(t Tracing) any { r, _ := t.Ratio(); return r }, want: 1.0},
		{name: "ratio", env: env("OTEL_TRACES_SAMPLER_ARG", "0.25"), got: func(t Tracing) any { r, _ := t.Ratio(); return r }, want: 0.25},
		{name: "headers merged, traces ones win", env: env("OTEL_EXPORTER_OTLP_HEADERS", "a=1, b = x%20y", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=2"),
			got: func(t Tracing) any { h, _ := t.OTLPHeaders(); return h["a"] + "|" + h["b"] }, want: "2|x y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(lookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(c.Tracing); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTracingHeadersRedacted(t *testing.T) {
	c, err := Load(lookup(env("OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=SECRET")))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "SECRET") || !strings.Contains(b.String(), "OTEL_EXPORTER_OTLP_HEADERS=<redacted>\n") {
		t.Errorf("got\n%s\nwant the headers redacted", b.String())
	}
}
