package service

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/demo"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/tracing"
)

const (
	demoTopic = "products"
	demoDLQ   = "products.dlq"
)

// runDemo runs the whole pipeline on an embedded broker: a producer of sample
// Avro product events (every tenth undecodable), the consumer with the log
// handler, the dead-letter topic and the metrics endpoint.
func (a *app) runDemo(lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	metricsAddr, metricsSet := lookup("METRICS_ADDR")
	metricsSet = metricsSet && strings.TrimSpace(metricsAddr) != ""
	if !metricsSet {
		metricsAddr = config.DefaultMetricsAddr
	}
	// An invalid address is exit 2, as with any invalid variable.
	metricsAddr = strings.TrimSpace(metricsAddr)
	_, err := config.Load(func(k string) (string, bool) { return metricsAddr, k == "METRICS_ADDR" })
	if ps, _ := errors.AsType[config.Errors](err); slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Var == "METRICS_ADDR" }) {
		return configError(stderr, slices.DeleteFunc(ps, func(p config.Problem) bool { return p.Var != "METRICS_ADDR" }))
	}
	ln, metricsNote, err := demoMetricsListener(metricsAddr, metricsSet)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitRuntime
	}
	defer ln.Close() // if the service never took it
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, demoTopic), kfake.SeedTopics(1, demoDLQ))
	if err != nil {
		fmt.Fprintln(stderr, "demo: cannot start the embedded broker:", err)
		return exitRuntime
	}
	defer cluster.Close()
	dir, err := os.MkdirTemp("", "consumer-demo")
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitRuntime
	}
	defer os.RemoveAll(dir)
	schemaFile := filepath.Join(dir, "product.avsc")
	if err := os.WriteFile(schemaFile, []byte(demo.Schema), 0o600); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitRuntime
	}

	// The demo sets everything but METRICS_ADDR and LOG_*, which the
	// environment may set as for the service.
	env := map[string]string{
		"KAFKA_BROKERS":     strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPICS":      demoTopic,
		"KAFKA_GROUP_ID":    "demo",
		"KAFKA_AUTH":        "none",
		"VALUE_FORMAT":      "avro",
		"VALUE_SCHEMA_FILE": schemaFile,
		"KEY_FORMAT":        "string",
		"HANDLER":           "log",
		"BATCH_MAX_WAIT":    "500ms",
		"SHUTDOWN_TIMEOUT":  "10s",
		"LOG_FORMAT":        "console",
	}
	// OTEL_* too: OTEL_TRACES_EXPORTER=console prints the spans.
	for _, k := range append([]string{"LOG_LEVEL", "LOG_FORMAT"}, config.TracingVariables()...) {
		if v, ok := lookup(k); ok && v != "" {
			env[k] = v
		}
	}
	// METRICS_ADDR is where ln listens: the one given, or a free port.
	env["METRICS_ADDR"] = ln.Addr().String()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, a.handlerNames()...)
	if err != nil {
		return configError(stderr, err)
	}
	log, err := newLogger(cfg.Ops, stderr)
	if err != nil {
		return configError(stderr, err)
	}
	setMemoryLimit(cfg.Batch.MaxBufferedBytes, log)
	ctx, stop := signalContext(a.ctx, log)
	defer stop()

	fmt.Fprintf(stdout, `msk-consumer demo
  broker       %s (embedded kfake)
  topic        %s, 3 partitions, Avro product events; every 10th is deliberately undecodable
  dead letters %s (printed below as they arrive)
  metrics      http://localhost%s/metrics   health: /healthz /readyz%s
  status page  http://localhost%s/status
  handler      log: one line per record
  traces       %s
Ctrl-C stops it cleanly.

`, cfg.Kafka.Brokers[0], demoTopic, demoDLQ, portOf(cfg.Ops.MetricsAddr), metricsNote, portOf(cfg.Ops.MetricsAddr), demoTraces(cfg.Tracing))

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumeTopics(demoDLQ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return exitRuntime
	}
	defer cl.Close()

	var produced, bad, lettered atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() { produceDemo(ctx, cl, cfg.Tracing.Enabled(), &produced, &bad, stderr) })
	wg.Go(func() { tailDLQ(ctx, cl, &lettered, stdout) })

	a.metricsListener = ln
	code := a.service(ctx, cfg, log, nil)
	stop()
	wg.Wait()
	fmt.Fprintf(stdout, "\ndemo: produced %d records (%d undecodable), %d dead-lettered; exit %d\n",
		produced.Load(), bad.Load(), lettered.Load(), code)
	return code
}

// demoMetricsListener listens where the demo serves its metrics and
// health: addr, or, when addr is the default (set is false) and taken (a
// Prometheus on :9090), a free port, with a note that says so for the
// banner. An address the operator set (METRICS_ADDR) that cannot be
// listened on is an error naming it.
func demoMetricsListener(addr string, set bool) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, "", nil
	}
	if set {
		return nil, "", fmt.Errorf("cannot serve metrics on METRICS_ADDR=%s: %w; set METRICS_ADDR to a free address, or unset it for :9090 or else any free port", addr, err)
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, ferr := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if ferr != nil {
		return nil, "", fmt.Errorf("cannot serve metrics on %s (%w) nor on any free port (%w); set METRICS_ADDR", addr, err, ferr)
	}
	return ln, fmt.Sprintf("\n               (%s is in use: a free port instead; METRICS_ADDR chooses)", addr), nil
}

// demoTraces says where the spans go.
func demoTraces(t config.Tracing) string {
	if !t.Enabled() {
		return "off (OTEL_TRACES_EXPORTER=console prints them)"
	}
	switch t.Exporter {
	case config.ExporterConsole:
		return "printed below, one JSON line per span (OTEL_TRACES_EXPORTER=console)"
	case config.ExporterOTLP:
		return "OTLP to " + config.RedactURL(t.OTLPEndpoint())
	}
	return "off (OTEL_TRACES_EXPORTER=console prints them)"
}

// produceDemo writes a burst of 50 product events, then 10 a second. With
// tracing, each carries a traceparent, as an instrumented producer's would,
// so the batch spans have links to follow.
func produceDemo(ctx context.Context, cl *kgo.Client, traced bool, produced, bad *atomic.Int64, stderr io.Writer) {
	gen, err := demo.NewGenerator(1)
	if err != nil {
		fmt.Fprintln(stderr, "demo producer:", err)
		return
	}
	gen.BadEvery = 10
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		n := 1
		if i == 0 {
			n = 50
		}
		for range n {
			r, isBad, err := gen.Next(demoTopic)
			if err != nil {
				fmt.Fprintln(stderr, "demo producer:", err)
				return
			}
			if traced {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: tracing.HeaderTraceparent, Value: producerTraceparent()})
			}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				if ctx.Err() == nil {
					fmt.Fprintln(stderr, "demo producer:", err)
				}
				return
			}
			produced.Add(1)
			if isBad {
				bad.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// producerTraceparent returns the traceparent of a made-up, sampled
// producer span.
func producerTraceparent() []byte {
	var tid trace.TraceID
	var sid trace.SpanID
	binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
	binary.BigEndian.PutUint64(tid[8:], rand.Uint64())
	binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1)
	return tracing.AppendTraceparent(nil, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
}

// tailDLQ prints each dead-lettered record with the headers that say why.
func tailDLQ(ctx context.Context, cl *kgo.Client, lettered *atomic.Int64, stdout io.Writer) {
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			lettered.Add(1)
			trace := ""
			if tp := h[dlq.HeaderTraceparent]; tp != "" {
				trace = " " + dlq.HeaderTraceparent + "=" + tp
			}
			fmt.Fprintf(stdout, ">> dead-lettered %s/%s@%s kind=%s attempts=%s%s: %s\n",
				h[dlq.HeaderTopic], h[dlq.HeaderPartition], h[dlq.HeaderOffset],
				h[dlq.HeaderKind], h[dlq.HeaderAttempts], trace, h[dlq.HeaderMessage])
		})
	}
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i:]
	}
	return addr
}
