// Package provider sets up the OpenTelemetry SDK from the tracing
// configuration (the OTEL_* variables): the exporter (OTLP over HTTP or
// gRPC, or the console), the sampler, the span limits and the resource
// (service name and version, the ECS task or EKS pod, OTEL_RESOURCE_ATTRIBUTES).
// It does not start spans: package tracing does, through the
// TracerProvider it returns.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ecsdetector "go.opentelemetry.io/contrib/detectors/aws/ecs"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/config"
)

// detectTimeout bounds the resource detection at start (the ECS task
// metadata endpoint is local and answers in milliseconds).
const detectTimeout = 2 * time.Second

// Options are what New needs besides the configuration.
type Options struct {
	// Version is service.version.
	Version string
	// Stdout is where the console exporter writes; nil: os.Stdout.
	Stdout io.Writer
	// MaxLinks is the most links a span keeps: BATCH_MAX_RECORDS, so that
	// a batch span links every record (the SDK keeps 128 by default, or
	// OTEL_SPAN_LINK_COUNT_LIMIT when that is larger).
	MaxLinks int
	// Lookup reads the environment for the EKS detector; nil: os.LookupEnv.
	Lookup func(string) (string, bool)
	// Detectors replace the ECS and EKS detectors (tests); nil: those.
	Detectors []resource.Detector
}

// Provider is the SDK's tracer provider, or nothing when tracing is off
// (a nil *Provider).
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New returns the Provider cfg describes, or nil with tracing off. Its
// error is an exporter that cannot be built; a resource detector that
// fails is returned as warn, with the resource built from the rest.
// Nothing is dialled: the exporter connects when it first exports.
func New(ctx context.Context, cfg config.Tracing, o Options) (p *Provider, warn error, err error) {
	if !cfg.Enabled() {
		return nil, nil, nil
	}
	exp, err := exporter(ctx, cfg, o)
	if err != nil {
		return nil, nil, err
	}
	sampler, err := sampler(cfg)
	if err != nil {
		return nil, nil, err
	}
	res, warn := newResource(ctx, cfg, o)
	limits := sdktrace.NewSpanLimits() // the SDK's defaults and OTEL_SPAN_*_LIMIT
	limits.LinkCountLimit = max(limits.LinkCountLimit, o.MaxLinks)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp), // OTEL_BSP_* apply
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
		sdktrace.WithRawSpanLimits(limits),
	)
	return &Provider{tp: tp}, warn, nil
}

// TracerProvider returns the SDK's provider, or nil with tracing off.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still queued and stops the exporter, within
// ctx. It is safe to call on a nil Provider and more than once.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// exporter builds the exporter of OTEL_TRACES_EXPORTER. The OTLP
// exporters also read what the table does not hold from the process
// environment (OTEL_EXPORTER_OTLP_TIMEOUT, _COMPRESSION, _CERTIFICATE, ...);
// the options given here win over it.
func exporter(ctx context.Context, cfg config.Tracing, o Options) (sdktrace.SpanExporter, error) {
	if cfg.Exporter == config.ExporterConsole {
		w := o.Stdout
		if w == nil {
			w = os.Stdout
		}
		return stdouttrace.New(stdouttrace.WithWriter(w))
	}
	headers, err := cfg.OTLPHeaders()
	if err != nil {
		return nil, errors.New("OTEL_EXPORTER_OTLP_HEADERS: " + err.Error())
	}
	endpoint := cfg.OTLPEndpoint()
	switch cfg.Transport() {
	case config.ProtocolGRPC:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(endpoint)}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	case config.ProtocolHTTPProtobuf, config.ProtocolHTTPJSON, "":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		if cfg.Transport() == config.ProtocolHTTPJSON {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	return nil, fmt.Errorf("OTLP protocol %q: not supported", cfg.Transport())
}

// sampler builds the sampler of OTEL_TRACES_SAMPLER.
func sampler(cfg config.Tracing) (sdktrace.Sampler, error) {
	ratio, err := cfg.Ratio()
	if err != nil {
		return nil, errors.New("OTEL_TRACES_SAMPLER_ARG: " + err.Error())
	}
	switch cfg.Sampler {
	case config.SamplerAlwaysOn:
		return sdktrace.AlwaysSample(), nil
	case config.SamplerAlwaysOff:
		return sdktrace.NeverSample(), nil
	case config.SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(ratio), nil
	case config.SamplerParentBasedAlwaysOn, "":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case config.SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case config.SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: not supported", cfg.Sampler)
}

// newResource describes the service: the SDK, the host, the ECS task or
// the EKS pod, service.version, OTEL_RESOURCE_ATTRIBUTES and the service
// name, each winning over those before it.
func newResource(ctx context.Context, cfg config.Tracing, o Options) (*resource.Resource, error) {
	detectors := o.Detectors
	if detectors == nil {
		lookup := o.Lookup
		if lookup == nil {
			lookup = os.LookupEnv
		}
		detectors = []resource.Detector{ecsdetector.NewResourceDetector(), &eksDetector{lookup: lookup, readFile: os.ReadFile}}
	}
	kvs, err := cfg.Attributes()
	if err != nil {
		// Not reached: Validate checked it.
		return resource.Default(), errors.New("OTEL_RESOURCE_ATTRIBUTES: " + err.Error())
	}
	attrs := make([]attribute.KeyValue, len(kvs))
	for i, kv := range kvs {
		attrs[i] = attribute.String(kv.Key, kv.Value)
	}
	ctx, cancel := context.WithTimeout(ctx, detectTimeout)
	defer cancel()
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithDetectors(detectors...),
		resource.WithAttributes(semconv.ServiceVersion(o.Version)),
		resource.WithAttributes(attrs...),
		resource.WithAttributes(semconv.ServiceName(cfg.Service())),
	)
	if err != nil {
		// A partial resource (a detector failed) is still the best
		// description there is.
		if res == nil {
			res = resource.Default()
		}
		return res, fmt.Errorf("resource detection: %w", err)
	}
	return res, nil
}
