package config

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// TracesExporter is where spans go: OTEL_TRACES_EXPORTER.
type TracesExporter string

// The values of OTEL_TRACES_EXPORTER this service supports.
const (
	ExporterNone    TracesExporter = "none"    // no tracing: the hooks cost nothing
	ExporterOTLP    TracesExporter = "otlp"    // OTLP to a collector (ADOT, Jaeger, Tempo, Honeycomb)
	ExporterConsole TracesExporter = "console" // one JSON document per span on stdout
)

// OTLPProtocol is the transport of the OTLP exporter:
// OTEL_EXPORTER_OTLP_PROTOCOL.
type OTLPProtocol string

// The values of OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	ProtocolHTTPProtobuf OTLPProtocol = "http/protobuf"
	ProtocolHTTPJSON     OTLPProtocol = "http/json"
	ProtocolGRPC         OTLPProtocol = "grpc"
)

// Sampler is OTEL_TRACES_SAMPLER: which traces are recorded.
type Sampler string

// The values of OTEL_TRACES_SAMPLER this service supports (the SDK's
// built-in samplers).
const (
	SamplerAlwaysOn                Sampler = "always_on"
	SamplerAlwaysOff               Sampler = "always_off"
	SamplerTraceIDRatio            Sampler = "traceidratio"
	SamplerParentBasedAlwaysOn     Sampler = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    Sampler = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio Sampler = "parentbased_traceidratio"
)

// Defaults of the tracing variables, as the OpenTelemetry specification
// gives them (the service name is the service's own).
const (
	DefaultTracesExporter = ExporterNone
	DefaultOTLPProtocol   = ProtocolHTTPProtobuf
	DefaultTracesSampler  = SamplerParentBasedAlwaysOn
	DefaultServiceName    = "msk-consumer"
	// DefaultOTLPHTTPEndpoint and DefaultOTLPGRPCEndpoint are the
	// collector's OTLP ports on this host.
	DefaultOTLPHTTPEndpoint = "http://localhost:4318"
	DefaultOTLPGRPCEndpoint = "http://localhost:4317"
)

// Tracing is OpenTelemetry tracing, configured by the SDK's standard
// variables. With OTEL_TRACES_EXPORTER=none (the default) the others are
// read but neither checked nor used: platforms set OTEL_* in every
// container, and a value meant for another SDK must not stop a service
// that does not trace.
type Tracing struct {
	Exporter       TracesExporter // OTEL_TRACES_EXPORTER
	Endpoint       string         // OTEL_EXPORTER_OTLP_ENDPOINT: the base URL; /v1/traces is appended for HTTP
	TracesEndpoint string         // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the whole URL; wins over Endpoint
	Protocol       OTLPProtocol   // OTEL_EXPORTER_OTLP_PROTOCOL
	Headers        string         // OTEL_EXPORTER_OTLP_HEADERS (secret): key=value,...
	TracesHeaders  string         // OTEL_EXPORTER_OTLP_TRACES_HEADERS (secret): wins over Headers, key by key
	// ServiceName is OTEL_SERVICE_NAME; empty means service.name of
	// OTEL_RESOURCE_ATTRIBUTES, else DefaultServiceName: use
	// Config.Tracing.Service.
	ServiceName        string
	ResourceAttributes string  // OTEL_RESOURCE_ATTRIBUTES: key=value,...
	Sampler            Sampler // OTEL_TRACES_SAMPLER
	SamplerArg         string  // OTEL_TRACES_SAMPLER_ARG: the ratio of the ratio samplers; empty means 1
	// Disabled is OTEL_SDK_DISABLED: no tracing, whatever the exporter.
	Disabled bool
	// TracesProtocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, empty when
	// unset: it wins over Protocol (use Transport).
	TracesProtocol string
	// Propagators is OTEL_PROPAGATORS; empty means tracecontext (use
	// PropagatorNames).
	Propagators []string
}

// The propagators OTEL_PROPAGATORS may name.
const (
	PropagatorTraceContext = "tracecontext"
	PropagatorBaggage      = "baggage"
	PropagatorNone         = "none"
)

var propagatorNames = []string{PropagatorTraceContext, PropagatorBaggage, PropagatorNone}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool {
	return !t.Disabled && t.Exporter != ExporterNone && t.Exporter != ""
}

// Transport is the OTLP exporter's protocol: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
// else OTEL_EXPORTER_OTLP_PROTOCOL.
func (t Tracing) Transport() OTLPProtocol {
	if t.TracesProtocol != "" {
		return OTLPProtocol(t.TracesProtocol)
	}
	return t.Protocol
}

// PropagatorNames are the propagators of OTEL_PROPAGATORS, in its order:
// tracecontext when unset.
func (t Tracing) PropagatorNames() []string {
	if len(t.Propagators) == 0 {
		return []string{PropagatorTraceContext}
	}
	return t.Propagators
}

// protocolExpect checks OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, which may be
// unset.
func protocolExpect(p string) string {
	if p == "" || slices.Contains(protocols, OTLPProtocol(p)) {
		return ""
	}
	return "expected " + oneOf(protocols...)
}

func propagatorExpect(p string) string {
	if slices.Contains(propagatorNames, p) {
		return ""
	}
	return "expected " + oneOf(propagatorNames...)
}

// OTLPEndpoint returns the URL the OTLP exporter sends to: the traces
// endpoint as given, else the base endpoint (for HTTP with /v1/traces
// appended, as the specification says), else the collector on this host.
func (t Tracing) OTLPEndpoint() string {
	if t.TracesEndpoint != "" {
		return t.TracesEndpoint
	}
	base := t.Endpoint
	if t.Transport() == ProtocolGRPC {
		if base == "" {
			return DefaultOTLPGRPCEndpoint
		}
		return base
	}
	if base == "" {
		base = DefaultOTLPHTTPEndpoint
	}
	return strings.TrimSuffix(base, "/") + "/v1/traces"
}

// OTLPHeaders returns the headers of every export request: Headers, then
// TracesHeaders, the latter winning for a key both name.
func (t Tracing) OTLPHeaders() (map[string]string, error) {
	h := map[string]string{}
	for _, raw := range []string{t.Headers, t.TracesHeaders} {
		kvs, err := ParseKeyValues(raw)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			h[kv.Key] = kv.Value
		}
	}
	return h, nil
}

// Attributes returns the parsed OTEL_RESOURCE_ATTRIBUTES.
func (t Tracing) Attributes() ([]KeyValue, error) { return ParseKeyValues(t.ResourceAttributes) }

// Service returns the service.name of the spans: OTEL_SERVICE_NAME, else
// service.name in OTEL_RESOURCE_ATTRIBUTES, else DefaultServiceName.
func (t Tracing) Service() string {
	if t.ServiceName != "" {
		return t.ServiceName
	}
	kvs, _ := t.Attributes()
	for _, kv := range kvs {
		if kv.Key == "service.name" && kv.Value != "" {
			return kv.Value
		}
	}
	return DefaultServiceName
}

// Ratio returns the sampling ratio of the ratio samplers: SamplerArg, 1
// when unset.
func (t Tracing) Ratio() (float64, error) {
	if t.SamplerArg == "" {
		return 1, nil
	}
	f, err := strconv.ParseFloat(t.SamplerArg, 64)
	if err != nil || f < 0 || f > 1 || f != f {
		return 0, fmt.Errorf("expected a ratio from 0 to 1, such as 0.25")
	}
	return f, nil
}

// KeyValue is one pair of OTEL_RESOURCE_ATTRIBUTES or
// OTEL_EXPORTER_OTLP_HEADERS.
type KeyValue struct{ Key, Value string }

// ParseKeyValues parses the OpenTelemetry list format: comma-separated
// key=value pairs, keys and values trimmed, values percent-decoded (as the
// W3C baggage header writes them). Empty pairs are skipped. Its errors
// never quote the text, which may hold a secret.
func ParseKeyValues(s string) ([]KeyValue, error) {
	var out []KeyValue
	n := 0
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		n++
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("expected comma-separated key=value pairs; pair %d has no key=", n)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("expected comma-separated key=value pairs with percent-encoded values; pair %d (key %q) has a bad %%-escape", n, k)
		}
		out = append(out, KeyValue{Key: k, Value: val})
	}
	return out, nil
}

// whenTracing checks a variable only when tracing is on (see Tracing);
// it is read, printed and documented like the value it wraps.
type whenTracing struct{ value }

func (w whenTracing) check(ck *validator, v *variable, c *Config) {
	if c.Tracing.Enabled() {
		w.value.check(ck, v, c)
	}
}

// otlpEndpointExpect accepts an absolute http or https URL, as the
// specification writes the OTLP endpoints.
func otlpEndpointExpect(raw string) string {
	if raw == "" {
		return ""
	}
	if p := httpURLProblem(raw); p != "" {
		return "expected an absolute http or https URL, such as http://localhost:4318: " + p
	}
	return ""
}

// keyValuesExpect accepts the OpenTelemetry list format.
func keyValuesExpect(raw string) string {
	if _, err := ParseKeyValues(raw); err != nil {
		return err.Error()
	}
	return ""
}

// ratioExpect accepts a sampling ratio.
func ratioExpect(raw string) string {
	if _, err := (Tracing{SamplerArg: raw}).Ratio(); err != nil {
		return err.Error()
	}
	return ""
}

// printEndpoint prints the endpoint the exporter uses when none is set.
func printEndpoint(c *Config) string {
	t := c.Tracing
	if t.Endpoint != "" {
		return RedactURL(t.Endpoint)
	}
	if t.TracesEndpoint != "" {
		return ""
	}
	base := DefaultOTLPHTTPEndpoint
	if t.Transport() == ProtocolGRPC {
		base = DefaultOTLPGRPCEndpoint
	}
	return base + "  # unset: the collector on this host"
}

// TracingVariables are the names of the tracing variables, in the table's
// order (the demo passes them through).
func TracingVariables() []string {
	var names []string
	for _, v := range variables {
		if v.Section == sectionTracing {
			names = append(names, v.Name)
		}
	}
	return names
}
