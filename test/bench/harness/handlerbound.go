package main

// The handler-bound section (docs/BENCHMARKS.md, "Handler-bound: ordering
// modes"): throughput when the handler, not decoding or fetching, is the
// limit, for each PROCESSING_ORDER. The consumer runs in this process
// (internal/consume, the engine bin/consumer runs), so that a Go handler
// can be given to it as a team's own handler would be.

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/builtin"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/consume"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

var (
	hbRecords   = flag.Int("handler-records", 60_000, "records per handler-bound run with the HTTP sink (at least ten batches per lane)")
	hbGoRecords = flag.Int("handler-go-records", 30_000, "records per handler-bound run with the Go handler (at least ten batches per lane; in partition order it takes records/3000 seconds)")
	hbKeys      = flag.Int("handler-keys", 100_000, "distinct keys of the handler-bound topic")
	hbSinkDelay = flag.Duration("handler-sink-delay", 20*time.Millisecond, "the HTTP sink's time per request")
	hbPerRecord = flag.Duration("handler-go-delay", 2*time.Millisecond, "the Go handler's time per record")
)

// HandlerResult is one handler-bound run.
type HandlerResult struct {
	Section string  `json:"section"` // "modes", or "dlq" for the dead-letter comparison
	Handler string  `json:"handler"` // "http" or "go"
	Order   string  `json:"order"`
	Lanes   int     `json:"lanes"`
	DLQ     bool    `json:"dlq"` // 1% undecodable records
	Records int     `json:"records"`
	Dead    int64   `json:"dead_lettered"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	Err     string  `json:"err,omitempty"`
}

var hbResults []HandlerResult

// sleepPerRecord is the benchmark's Go handler: it takes a fixed time per
// record, as a handler doing one database call per record does.
type sleepPerRecord time.Duration

func (d sleepPerRecord) Handle(ctx context.Context, b handler.Batch) error {
	select {
	case <-time.After(time.Duration(d) * time.Duration(len(b.Records))):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// preloadKeyed writes n small JSON records keyed "k<i mod keys>" to a new
// topic of *partitions partitions (and its dead-letter topic); with bad,
// every hundredth record is not JSON.
func preloadKeyed(ctx context.Context, adm *kadm.Client, cl *kgo.Client, topic string, n, keys int, bad bool) error {
	for _, t := range []string{topic, topic + ".dlq"} {
		if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, t); err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
	}
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			v := fmt.Appendf(nil, `{"id":%d,"name":"product %d","price":%d.99,"tags":["a","b"]}`, j, j, j%1000)
			if bad && j%100 == 50 {
				v = []byte("not json")
			}
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", j%keys), Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// handlerRun consumes topic (n records) from the start with a new group and
// returns the rate from the handler's first call to the last record
// finished (the last partial batch of each lane waits BATCH_MAX_WAIT, which
// the rate includes).
//
// hname is "http" (posting to sinkURL), "go" (sleepPerRecord) or "lambda"
// (invoking through the Lambda API at sinkURL, lambda.go); maxInFlight is
// MAX_IN_FLIGHT_BATCHES, 0 for one slot per lane of every partition.
func handlerRun(ctx context.Context, topic string, n int, hname, order string, lanes int, sinkURL string, maxInFlight int) HandlerResult {
	r := HandlerResult{Handler: hname, Order: order, Lanes: lanes, Records: n}
	if maxInFlight <= 0 {
		// Enough slots for every lane of every partition: the handler
		// is the limit under test, not the slots.
		maxInFlight = max(*partitions*lanes, 16)
	}
	env := map[string]string{
		"KAFKA_BROKERS": *brokers, "KAFKA_TOPICS": topic, "KAFKA_GROUP_ID": group("hb"),
		"KAFKA_AUTH": "none", "VALUE_FORMAT": "json", "KEY_FORMAT": "string",
		"BATCH_MAX_RECORDS": "100", "BATCH_MAX_WAIT": "100ms",
		"MAX_IN_FLIGHT_BATCHES": strconv.Itoa(maxInFlight),
		"PROCESSING_ORDER":      order, "PARTITION_CONCURRENCY": strconv.Itoa(lanes),
		"SHUTDOWN_TIMEOUT": "10s", "LOG_LEVEL": "error",
	}
	switch hname {
	case "http":
		env["HANDLER"], env["HTTP_HANDLER_URL"] = "http", sinkURL
	case "lambda":
		env["HANDLER"], env["LAMBDA_FUNCTION_NAME"], env["LAMBDA_INVOKE_TIMEOUT"] = "lambda", "bench", "30s"
		env["AWS_REGION"] = "us-east-1"
	default:
		env["HANDLER"] = "bench-go"
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "bench-go")
	if err != nil {
		r.Err = err.Error()
		return r
	}
	key, value, err := codec.NewKeyValue(ctx, cfg, codec.Options{})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	reg := prometheus.NewRegistry()
	var h handler.Handler = sleepPerRecord(*hbPerRecord)
	switch hname {
	case "http":
		// Connections for every request in flight at once.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost, tr.MaxIdleConns = 512, 512
		h, err = builtin.NewHTTP(cfg.Handler, nil, &http.Client{Transport: tr, Timeout: cfg.Handler.HTTPTimeout})
	case "lambda":
		h, err = newBenchLambda(cfg, sinkURL, reg)
	}
	if err != nil {
		r.Err = err.Error()
		return r
	}
	fc := &firstCall{next: h}
	c, err := consume.New(cfg, consume.Deps{
		Key: key, Value: value, Handler: fc, Logger: zap.NewNop(),
		Metrics: metrics.New(reg), Health: health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now),
	})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	var end time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for end.IsZero() {
		time.Sleep(10 * time.Millisecond)
		if time.Now().After(deadline) {
			r.Err = "did not finish"
			break
		}
		if finished(reg) >= int64(n) {
			end = time.Now()
		}
	}
	cancel()
	if err := <-done; err != nil && r.Err == "" {
		r.Err = err.Error()
	}
	r.Dead = count(reg, "dead_lettered")
	if begin := fc.first(); !end.IsZero() && end.After(begin) {
		r.Seconds = end.Sub(begin).Seconds()
		r.Rate = float64(n) / r.Seconds
	}
	return r
}

// firstCall is the handler under test, noting when it was first called: the
// run is timed from then (fetching the first records and joining the group
// are not the handler's throughput) to the last record finished.
type firstCall struct {
	next handler.Handler
	at   atomic.Int64 // unix nanoseconds
}

func (f *firstCall) Handle(ctx context.Context, b handler.Batch) error {
	f.at.CompareAndSwap(0, time.Now().UnixNano())
	return f.next.Handle(ctx, b)
}

func (f *firstCall) first() time.Time { return time.Unix(0, f.at.Load()) }

// finished sums consumer_records_total for processed and dead-lettered
// records.
func finished(reg *prometheus.Registry) int64 { return count(reg, "processed", "dead_lettered") }

// count sums consumer_records_total for the outcomes.
func count(reg *prometheus.Registry, outcomes ...string) int64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "consumer_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && slices.Contains(outcomes, l.GetValue()) {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int64(total)
}

// runHandlerBound runs the section: for the HTTP sink and the Go handler,
// partition, key with 8 and 32 lanes, and none (32 lanes); then partition
// and key/32 with each handler and 1% undecodable records.
func runHandlerBound(ctx context.Context, adm *kadm.Client) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	sink := newSlowSink(*hbSinkDelay)
	defer sink.Close()
	type mode struct {
		order string
		lanes int
	}
	modes := []mode{{"partition", 1}, {"key", 8}, {"key", 32}, {"none", 32}}
	for _, hname := range []string{"http", "go"} {
		n := *hbRecords
		if hname == "go" {
			n = *hbGoRecords
		}
		for _, m := range modes {
			// Ten batches per lane at least, so that the lanes' start
			// and end are a small part of the run.
			n := max(n, *partitions*m.lanes*100*10)
			topic := prefix + "-hb-" + strconv.Itoa(int(seq.Add(1)))
			if err := preloadKeyed(ctx, adm, cl, topic, n, *hbKeys, false); err != nil {
				return err
			}
			logf("handler-bound: %s, %s/%d, %d records", hname, m.order, m.lanes, n)
			r := handlerRun(ctx, topic, n, hname, m.order, m.lanes, sink.url, 0)
			r.Section = "modes"
			logf("  %.0f records/s %s", r.Rate, r.Err)
			hbResults = append(hbResults, r)
			_, _ = adm.DeleteTopics(ctx, topic, topic+".dlq")
		}
	}
	// The Go handler as well: with 32 lanes the HTTP sink's runs are
	// bound by the two cores rather than by the handler, the Go
	// handler's are not.
	for _, hname := range []string{"http", "go"} {
		for _, m := range []mode{{"partition", 1}, {"key", 32}} {
			for _, bad := range []bool{false, true} {
				n := *hbRecords
				if hname == "go" {
					n = *hbGoRecords
				}
				n = max(n, *partitions*m.lanes*100*10)
				topic := prefix + "-hbdlq-" + strconv.Itoa(int(seq.Add(1)))
				if err := preloadKeyed(ctx, adm, cl, topic, n, *hbKeys, bad); err != nil {
					return err
				}
				logf("handler-bound DLQ: %s, %s/%d, 1%% bad %v", hname, m.order, m.lanes, bad)
				r := handlerRun(ctx, topic, n, hname, m.order, m.lanes, sink.url, 0)
				r.Section, r.DLQ = "dlq", bad
				logf("  %.0f records/s %s", r.Rate, r.Err)
				hbResults = append(hbResults, r)
				_, _ = adm.DeleteTopics(ctx, topic, topic+".dlq")
			}
		}
	}
	return nil
}

func hbRate(section, hname, order string, lanes int, dlq bool) float64 {
	for _, r := range hbResults {
		if r.Section == section && r.Handler == hname && r.Order == order && r.Lanes == lanes && r.DLQ == dlq && r.Err == "" {
			return r.Rate
		}
	}
	return 0
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func handlerMarkdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d partitions, %d keys, `BATCH_MAX_RECORDS=100`, `BATCH_MAX_WAIT=100ms`, `MAX_IN_FLIGHT_BATCHES` = partitions × lanes (at least 16). HTTP: a sink taking %s per request; Go: a handler taking %s per record. Rate from the handler's first call to the last record finished (each lane's last partial batch waits `BATCH_MAX_WAIT`).\n\n",
		*partitions, *hbKeys, *hbSinkDelay, *hbPerRecord)
	b.WriteString("| handler | order | lanes | 1% undecodable | records | records/s | vs partition |\n| --- | --- | ---: | --- | ---: | ---: | ---: |\n")
	for _, r := range hbResults {
		rate := fmt.Sprintf("%.0f", r.Rate)
		if r.Err != "" {
			rate = "error: " + r.Err
		}
		dlq := "no"
		if r.DLQ {
			dlq = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %s | %s |\n", r.Handler, r.Order, r.Lanes, dlq, r.Records, rate,
			ratio(r.Rate, hbRate(r.Section, r.Handler, "partition", 1, r.DLQ)))
	}
	b.WriteString("\n| goal | measured | met |\n| --- | ---: | --- |\n")
	goal := func(name string, got float64, want float64) {
		fmt.Fprintf(&b, "| %s | %.2f× | %v |\n", name, got, got >= want)
	}
	for _, h := range []string{"http", "go"} {
		if p := hbRate("modes", h, "partition", 1, false); p > 0 {
			goal(h+": key/32 ≥ 10× partition", hbRate("modes", h, "key", 32, false)/p, 10)
		}
	}
	for _, h := range []string{"http", "go"} {
		for _, m := range []struct {
			order string
			lanes int
		}{{"partition", 1}, {"key", 32}} {
			if p := hbRate("dlq", h, m.order, m.lanes, false); p > 0 {
				goal(fmt.Sprintf("%s %s/%d: 1%% DLQ ≥ 0.9× no DLQ", h, m.order, m.lanes), hbRate("dlq", h, m.order, m.lanes, true)/p, 0.9)
			}
		}
	}
	return b.String()
}

// handlerOnly runs the handler-bound section alone and writes its results.
func handlerOnly(ctx context.Context, adm *kadm.Client) error {
	if err := runHandlerBound(ctx, adm); err != nil {
		return err
	}
	out.LoadEnd = loadavg()
	out.Handler = hbResults
	writeOut()
	md := fmt.Sprintf("Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s, at end %s  \nBroker: %s\n",
		out.Command, out.Machine, out.Date, out.Load, out.LoadEnd, out.Broker) + handlerMarkdown()
	fmt.Println(md)
	return os.WriteFile(*outMD, []byte(md), 0o644)
}
