package main

// The Lambda section (docs/BENCHMARKS.md, "Lambda functions"): HANDLER=lambda
// invoking a Go function built with aws-lambda-go (test/lambda/gofn) that
// takes -lambda-delay per invocation, in AWS's Lambda runtime interface
// emulator, several of them behind the proxy of test/lambda/pool (the one
// the Lambda tier uses: an idle emulator per invocation, 429
// TooManyRequestsException when all are busy). It measures invocations and
// records per second in partition order (the event source mapping's own
// model: one batch per partition at a time) and in key order, and what
// throttling costs when the function's concurrency (the pool) is below the
// service's (partitions × lanes).

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/builtin"
	"github.com/msk-consumer/msk-consumer/test/lambda/pool"
)

var (
	lambdaRIE     = flag.String("lambda-rie", "", "the Lambda runtime interface emulator (bin/aws-lambda-rie; empty: no Lambda section)")
	lambdaFn      = flag.String("lambda-fn", "", "the Go function run in it (bin/lambda-gofn, test/lambda/gofn)")
	lambdaRecords = flag.Int("lambda-records", 120_000, "records per Lambda run (at least ten batches per lane)")
	lambdaDelay   = flag.Duration("lambda-delay", 20*time.Millisecond, "the function's time per invocation")
	lambdaPool    = flag.Int("lambda-pool", 8, "emulators of the partition-order and the throttled runs")
	lambdaLanes   = flag.Int("lambda-lanes", 8, "PARTITION_CONCURRENCY of the key-order runs")
	lambdaSkipped string // why the section did not run, for the table
)

// LambdaResult is one run of the Lambda section.
type LambdaResult struct {
	Name        string  `json:"name"`
	Order       string  `json:"order"`
	Lanes       int     `json:"lanes"`
	Pool        int     `json:"pool"`          // emulators: the function's concurrency
	MaxInFlight int     `json:"max_in_flight"` // MAX_IN_FLIGHT_BATCHES
	Records     int     `json:"records"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"records_per_s"`
	Invocations int64   `json:"invocations"` // answered by an emulator
	InvPerS     float64 `json:"invocations_per_s"`
	Throttled   int64   `json:"throttled"` // answered 429
	FnErrors    int64   `json:"function_errors"`
	Dead        int64   `json:"dead_lettered"`
	Ideal       float64 `json:"ideal_records_per_s"` // every usable emulator always busy with full batches
	Err         string  `json:"error,omitempty"`
}

var lambdaResults []LambdaResult

// newBenchLambda is the lambda handler as the service builds it, with the
// Lambda API at url (the proxy) and static credentials in place of the
// default chain.
func newBenchLambda(cfg config.Config, url string, reg prometheus.Registerer) (handler.Handler, error) {
	return builtin.NewLambda(cfg.Handler, cfg.EventSource(), nil, builtin.WithRegisterer(reg),
		builtin.WithLambdaOptions(func(o *lambda.Options) {
			o.BaseEndpoint = aws.String(url)
			o.Credentials = credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", "")
		}))
}

// warm invokes every emulator once with an event without records, so that
// no run pays for a function's cold start (Lambda keeps execution
// environments warm under a steady load as well).
func warm(urls []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, u := range urls {
		wg.Go(func() {
			resp, err := http.Post(u+"/2015-03-31/functions/function/invocations", "application/json",
				bytes.NewReader([]byte(`{"eventSource":"aws:kafka","records":{}}`)))
			if err != nil {
				errs[i] = err
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("emulator %s: warm-up invocation answered %s", u, resp.Status)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runLambda runs the section: partition order on -lambda-pool emulators;
// key order with -lambda-lanes lanes on as many emulators as the service
// has lanes (no throttling) and on -lambda-pool (throttled, then with
// MAX_IN_FLIGHT_BATCHES lowered to the pool).
func runLambda(ctx context.Context, adm *kadm.Client) error {
	if *lambdaRIE == "" || *lambdaFn == "" {
		lambdaSkipped = "no -lambda-rie/-lambda-fn (scripts/lambda/setup.sh did not build them)"
		return nil
	}
	lanes := *lambdaLanes
	all := max(*partitions*lanes, *lambdaPool)
	logf("lambda: starting %d emulators", all)
	emu, err := pool.Start(pool.Options{RIE: *lambdaRIE, N: all, Dir: *workDir,
		Env: []string{"FN_SLEEP=" + lambdaDelay.String()}, Cmd: []string{*lambdaFn}})
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := warm(emu.URLs()); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	runs := []LambdaResult{
		{Name: "partition order", Order: "partition", Lanes: 1, Pool: *lambdaPool},
		{Name: "key order", Order: "key", Lanes: lanes, Pool: all},
		{Name: "key order, throttled", Order: "key", Lanes: lanes, Pool: *lambdaPool},
		{Name: "key order, in-flight = pool", Order: "key", Lanes: lanes, Pool: *lambdaPool, MaxInFlight: *lambdaPool},
	}
	const batch = 100 // handlerRun's BATCH_MAX_RECORDS
	for _, r := range runs {
		n := max(*lambdaRecords, *partitions*r.Lanes*batch*10)
		topic := prefix + "-lambda-" + strconv.Itoa(int(seq.Add(1)))
		if err := preloadKeyed(ctx, adm, cl, topic, n, *hbKeys, false); err != nil {
			return err
		}
		proxy := pool.NewProxy(emu.URLs()[:r.Pool]...)
		srv := httptest.NewServer(proxy)
		logf("lambda: %s, %s/%d on %d emulators, %d records", r.Name, r.Order, r.Lanes, r.Pool, n)
		hr := handlerRun(ctx, topic, n, "lambda", r.Order, r.Lanes, srv.URL, r.MaxInFlight)
		idle, cancel := context.WithTimeout(ctx, time.Minute)
		if err := proxy.WaitIdle(idle); err != nil {
			logf("lambda: %v", err)
		}
		cancel()
		srv.Close()
		r.Records, r.Seconds, r.Rate, r.Dead, r.Err = n, hr.Seconds, hr.Rate, hr.Dead, hr.Err
		if r.MaxInFlight == 0 {
			r.MaxInFlight = max(*partitions*r.Lanes, 16)
		}
		r.Invocations, r.Throttled, r.FnErrors = proxy.Invoked.Load(), proxy.Throttled.Load(), proxy.FunctionErrors.Load()
		if r.Seconds > 0 {
			r.InvPerS = float64(r.Invocations) / r.Seconds
		}
		usable := min(r.Pool, *partitions*r.Lanes, r.MaxInFlight)
		r.Ideal = float64(usable) * batch / lambdaDelay.Seconds()
		if r.Err == "" && (r.Dead > 0 || r.FnErrors > 0) {
			r.Err = fmt.Sprintf("%d dead-lettered, %d function errors: the run is not a benchmark", r.Dead, r.FnErrors)
		}
		logf("  %.0f records/s, %.0f invocations/s, %d throttled %s", r.Rate, r.InvPerS, r.Throttled, r.Err)
		lambdaResults = append(lambdaResults, r)
		_, _ = adm.DeleteTopics(ctx, topic, topic+".dlq")
	}
	return nil
}

func lambdaMarkdown() string {
	var b strings.Builder
	b.WriteString("\n### Lambda\n\n")
	if lambdaSkipped != "" {
		fmt.Fprintf(&b, "Not run: %s.\n", lambdaSkipped)
		return b.String()
	}
	fmt.Fprintf(&b, "%d partitions, %d keys, `HANDLER=lambda`, `BATCH_MAX_RECORDS=100`, `BATCH_MAX_WAIT=100ms`, default retry backoff (`HANDLER_RETRY_BACKOFF=200ms`, `_MAX=10s`). A Go function (aws-lambda-go, `test/lambda/gofn`) taking %s per invocation, in AWS's Lambda runtime interface emulator; the pool is the number of emulators behind the proxy of `test/lambda/pool` (one invocation each at a time, 429 `TooManyRequestsException` when all are busy: the function's concurrency). Ideal: every usable emulator always busy with a full batch (min(pool, partitions × lanes, `MAX_IN_FLIGHT_BATCHES`) × 100 / %s).\n\n",
		*partitions, *hbKeys, *lambdaDelay, *lambdaDelay)
	b.WriteString("| run | order | lanes | pool | in flight | records | records/s | invocations/s | throttled (429) | × ideal | vs partition |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var part float64
	for _, r := range lambdaResults {
		if r.Order == "partition" && r.Err == "" {
			part = r.Rate
		}
	}
	for _, r := range lambdaResults {
		rate := fmt.Sprintf("%.0f", r.Rate)
		if r.Err != "" {
			rate = "error: " + r.Err
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %.0f | %d | %s | %s |\n", r.Name, r.Order, r.Lanes, r.Pool, r.MaxInFlight,
			r.Records, rate, r.InvPerS, r.Throttled, ratio(r.Rate, r.Ideal), ratio(r.Rate, part))
	}
	for _, r := range lambdaResults {
		if r.Name == "key order" && part > 0 {
			fmt.Fprintf(&b, "\n| goal | measured | met |\n| --- | ---: | --- |\n| key/%d ≥ 5× partition order's records/s | %.2f× | %v |\n",
				r.Lanes, r.Rate/part, r.Err == "" && r.Rate >= 5*part)
		}
	}
	return b.String()
}

// lambdaOnly runs the Lambda section alone and writes its results.
func lambdaOnly(ctx context.Context, adm *kadm.Client) error {
	if err := runLambda(ctx, adm); err != nil {
		return err
	}
	if lambdaSkipped != "" {
		return errors.New("-only lambda: " + lambdaSkipped)
	}
	out.LoadEnd = loadavg()
	out.Lambda = lambdaResults
	writeOut()
	md := fmt.Sprintf("Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s, at end %s  \nBroker: %s\n",
		out.Command, out.Machine, out.Date, out.Load, out.LoadEnd, out.Broker) + lambdaMarkdown()
	fmt.Println(md)
	return os.WriteFile(*outMD, []byte(md), 0o644)
}
