package main

// The Lambda section (docs/BENCHMARKS.md, "Lambda functions"): HANDLER=lambda
// invoking a Go function built with aws-lambda-go (test/lambda/gofn,
// FN_MODE=count: see lambdaEnv) that takes -lambda-delay per invocation,
// in AWS's Lambda runtime interface
// emulator, several of them behind the proxy of test/lambda/pool (the one
// the Lambda tier uses: an idle emulator per invocation, 429
// TooManyRequestsException when all are busy). It measures invocations and
// records per second in partition order (the event source mapping's own
// model: one batch per partition at a time) and in key order, and what
// throttling costs when the function's concurrency (the pool) is below the
// service's (partitions × lanes). Each run also reports the CPU that each
// process group spent (proccpu.go), per invocation.
//
// Then partition order and key order again, with the same service
// settings, against the fleet stand-in (pool.NewFleet): the same proxy and
// Invoke API, answering each invocation itself after -lambda-delay with
// the records counted, and no emulator or function process. On Lambda the
// function runs on Lambda's fleet, not on the service's host; on this
// machine the emulators and functions take most of its CPU, so the
// emulator runs measure the machine, and the stand-in runs the service's
// side of an event source mapping alone.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
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
	lambdaProfile = flag.String("lambda-cpuprofile", "", "write a CPU profile of the harness (the service and the proxy) per run, from its first invocation to its end, to this prefix + run + .pprof")
	lambdaSkipped string // why the section did not run, for the table
)

// LambdaResult is one run of the Lambda section.
type LambdaResult struct {
	Name        string  `json:"name"`
	Order       string  `json:"order"`
	Lanes       int     `json:"lanes"`
	Function    string  `json:"function"`      // "emulators", or "stand-in" (pool.NewFleet: no function process)
	Pool        int     `json:"pool"`          // emulators, or the stand-in's limit: the function's concurrency
	MaxInFlight int     `json:"max_in_flight"` // MAX_IN_FLIGHT_BATCHES
	Records     int     `json:"records"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"records_per_s"`
	Invocations int64   `json:"invocations"` // answered by an emulator (the stand-in)
	InvPerS     float64 `json:"invocations_per_s"`
	Throttled   int64   `json:"throttled"` // answered 429
	FnErrors    int64   `json:"function_errors"`
	FnRecords   int64   `json:"function_records"` // records the functions (the stand-in) counted in their events
	Dead        int64   `json:"dead_lettered"`
	Ideal       float64 `json:"ideal_records_per_s"` // every usable emulator always busy with full batches
	// CPU seconds by process group (harness: the service and the proxy;
	// emulators; functions; kfake; other), from the run's first
	// invocation to its end, and the machine's busy share of its CPU
	// time then.
	CPU     map[string]float64 `json:"cpu_seconds"`
	CPUBusy float64            `json:"cpu_busy"`
	CPUSecs float64            `json:"cpu_window_seconds"` // wall seconds of that window
	Err     string             `json:"error,omitempty"`
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

// lambdaEnv is the emulators' and the functions' environment. The
// function is FN_MODE=count: it sleeps -lambda-delay, counts its event's
// records and answers success with the count, which the proxy sums
// (Proxy.Records) and the run checks against the records handled; it does
// not decode the event with aws-lambda-go (test/lambda/gofn). Each
// emulator and function runs with GOMAXPROCS=1, and the emulators log
// errors only: they stand in for Lambda's fleet, which does not share the
// service's CPU, and 48 of each with a scheduler thread per core and a
// log line per invocation took more of this machine's two cores than the
// service did (docs/BENCHMARKS.md, "Lambda functions").
func lambdaEnv() []string {
	return []string{"FN_SLEEP=" + lambdaDelay.String(), "FN_MODE=count", "GOMAXPROCS=1", "LOG_LEVEL=error"}
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
// MAX_IN_FLIGHT_BATCHES lowered to the pool); then, the emulators
// stopped, partition order and key order (not throttled) against the
// fleet stand-in with the same limits.
func runLambda(ctx context.Context, adm *kadm.Client) error {
	if *lambdaRIE == "" || *lambdaFn == "" {
		lambdaSkipped = "no -lambda-rie/-lambda-fn (scripts/lambda/setup.sh did not build them)"
		return nil
	}
	lanes := *lambdaLanes
	all := max(*partitions*lanes, *lambdaPool)
	logf("lambda: starting %d emulators", all)
	emu, err := pool.Start(pool.Options{RIE: *lambdaRIE, N: all, Dir: *workDir,
		Env: lambdaEnv(), Cmd: []string{*lambdaFn}})
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
	for _, r := range runs {
		r.Function = "emulators"
		if err := lambdaRun(ctx, adm, cl, r, pool.NewProxy(emu.URLs()[:r.Pool]...)); err != nil {
			return err
		}
	}
	// The stand-in runs on a machine without emulators or functions.
	emu.Close()
	standIn := []LambdaResult{
		{Name: "partition order, fleet stand-in", Order: "partition", Lanes: 1, Pool: *lambdaPool},
		{Name: "key order, fleet stand-in", Order: "key", Lanes: lanes, Pool: all},
	}
	for _, r := range standIn {
		r.Function = "stand-in"
		if err := lambdaRun(ctx, adm, cl, r, pool.NewFleet(r.Pool, *lambdaDelay)); err != nil {
			return err
		}
	}
	return nil
}

// lambdaRun runs r against proxy (emulators or the stand-in) on a topic of
// its own and appends its result.
func lambdaRun(ctx context.Context, adm *kadm.Client, cl *kgo.Client, r LambdaResult, proxy *pool.Proxy) error {
	const batch = 100 // handlerRun's BATCH_MAX_RECORDS
	n := max(*lambdaRecords, *partitions*r.Lanes*batch*10)
	topic := prefix + "-lambda-" + strconv.Itoa(int(seq.Add(1)))
	if err := preloadKeyed(ctx, adm, cl, topic, n, *hbKeys, false); err != nil {
		return err
	}
	srv := httptest.NewServer(proxy)
	logf("lambda: %s, %s/%d on %d %s, %d records", r.Name, r.Order, r.Lanes, r.Pool, r.Function, n)
	meter := startCPUMeter(proxy, r.Name)
	hr := handlerRun(ctx, topic, n, "lambda", r.Order, r.Lanes, srv.URL, r.MaxInFlight)
	r.CPU, r.CPUBusy, r.CPUSecs = meter.stop()
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
	r.FnRecords = proxy.Records.Load()
	if r.Seconds > 0 {
		r.InvPerS = float64(r.Invocations) / r.Seconds
	}
	usable := min(r.Pool, *partitions*r.Lanes, r.MaxInFlight)
	r.Ideal = float64(usable) * batch / lambdaDelay.Seconds()
	if r.Err == "" && (r.Dead > 0 || r.FnErrors > 0) {
		r.Err = fmt.Sprintf("%d dead-lettered, %d function errors: the run is not a benchmark", r.Dead, r.FnErrors)
	}
	if r.Err == "" && r.FnRecords < int64(n) {
		r.Err = fmt.Sprintf("the functions counted %d records in their events, fewer than the %d handled", r.FnRecords, n)
	}
	logf("  %.0f records/s, %.0f invocations/s, %d throttled %s", r.Rate, r.InvPerS, r.Throttled, r.Err)
	lambdaResults = append(lambdaResults, r)
	_, _ = adm.DeleteTopics(ctx, topic, topic+".dlq")
	return nil
}

func lambdaMarkdown() string {
	var b strings.Builder
	b.WriteString("\n### Lambda\n\n")
	if lambdaSkipped != "" {
		fmt.Fprintf(&b, "Not run: %s.\n", lambdaSkipped)
		return b.String()
	}
	fmt.Fprintf(&b, "%d partitions, %d keys, `HANDLER=lambda`, `BATCH_MAX_RECORDS=100`, `BATCH_MAX_WAIT=100ms`, default retry backoff (`HANDLER_RETRY_BACKOFF=200ms`, `_MAX=10s`). A Go function (aws-lambda-go, `test/lambda/gofn` with `FN_MODE=count`: it sleeps %s, counts the event's records without decoding it, and answers success with the count, which must add up to at least the records handled) in AWS's Lambda runtime interface emulator (emulators and functions with `GOMAXPROCS=1`, emulators with `LOG_LEVEL=error`); the pool is the number of emulators behind the proxy of `test/lambda/pool` (one invocation each at a time, 429 `TooManyRequestsException` when all are busy: the function's concurrency). Ideal: every usable emulator always busy with a full batch (min(pool, partitions × lanes, `MAX_IN_FLIGHT_BATCHES`) × 100 / %s).\n\n",
		*partitions, *hbKeys, *lambdaDelay, *lambdaDelay)
	fmt.Fprintf(&b, "The last two runs (\"fleet stand-in\") are partition order and key order again with the same service settings, the emulators stopped, against a stand-in for Lambda's fleet (`pool.NewFleet`): the same proxy and Invoke API, as many invocations at once as the pool (429 beyond), each answered by the proxy itself after %s with `{\"batchItemFailures\":[]}`, its records counted as the function counts them. It is not a Lambda runtime: no emulator, no runtime API, no function process, nothing decoded. It measures the service's side of an event source mapping (events built, invoked, answered, committed) with the function's time but not its CPU, which on AWS is spent on Lambda's fleet, not on the service's host. \"vs partition\" compares each run with the partition order of its own kind.\n\n", *lambdaDelay)
	b.WriteString("| run | order | lanes | pool | in flight | records | records/s | invocations/s | throttled (429) | × ideal | vs partition |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	part := partitionRates()
	for _, r := range lambdaResults {
		rate := fmt.Sprintf("%.0f", r.Rate)
		if r.Err != "" {
			rate = "error: " + r.Err
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %.0f | %d | %s | %s |\n", r.Name, r.Order, r.Lanes, r.Pool, r.MaxInFlight,
			r.Records, rate, r.InvPerS, r.Throttled, ratio(r.Rate, r.Ideal), ratio(r.Rate, part[r.Function]))
	}
	b.WriteString(cpuMarkdown())
	b.WriteString(lambdaGoals(part))
	return b.String()
}

// partitionRates are the partition-order runs' records/s by Function
// (those without an error).
func partitionRates() map[string]float64 {
	part := map[string]float64{}
	for _, r := range lambdaResults {
		if r.Order == "partition" && r.Err == "" {
			part[r.Function] = r.Rate
		}
	}
	return part
}

// lambdaGoals is the goal table: key order (not throttled) against
// partition order, on the emulators and on the stand-in.
func lambdaGoals(part map[string]float64) string {
	var b strings.Builder
	for _, r := range lambdaResults {
		var what string
		switch {
		case r.Order != "key" || r.Pool < *partitions*r.Lanes || part[r.Function] == 0:
			continue
		case r.Function == "stand-in":
			what = "(fleet stand-in: no function on this machine)"
		default:
			what = "(emulators)"
		}
		if b.Len() == 0 {
			b.WriteString("\n| goal | measured | met |\n| --- | ---: | --- |\n")
		}
		fmt.Fprintf(&b, "| key/%d ≥ 5× partition order %s | %.2f× | %v |\n",
			r.Lanes, what, r.Rate/part[r.Function], r.Err == "" && r.Rate >= 5*part[r.Function])
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

// cpuMeter measures CPU by process group from a run's first invocation to
// its end, and profiles the harness then with -lambda-cpuprofile.
type cpuMeter struct {
	done    chan struct{}
	started chan struct{}
	before  CPUTimes
	at      time.Time
	prof    *os.File
}

func startCPUMeter(p *pool.Proxy, name string) *cpuMeter {
	m := &cpuMeter{done: make(chan struct{}), started: make(chan struct{})}
	go func() {
		defer close(m.started)
		for p.Invoked.Load()+p.Throttled.Load() == 0 {
			select {
			case <-m.done:
				return
			case <-time.After(time.Millisecond):
			}
		}
		m.before, m.at = readCPUTimes(), time.Now()
		if *lambdaProfile != "" {
			f, err := os.Create(*lambdaProfile + strings.ReplaceAll(name, " ", "_") + ".pprof")
			if err == nil && pprof.StartCPUProfile(f) == nil {
				m.prof = f
			}
		}
	}()
	return m
}

func (m *cpuMeter) stop() (map[string]float64, float64, float64) {
	close(m.done)
	<-m.started
	if m.at.IsZero() {
		return nil, 0, 0
	}
	if m.prof != nil {
		pprof.StopCPUProfile()
		_ = m.prof.Close()
	}
	d := readCPUTimes().sub(m.before)
	busy := 0.0
	if d.Total > 0 {
		busy = d.Busy / d.Total
	}
	return d.Groups, busy, time.Since(m.at).Seconds()
}

// cpuMarkdown is the table of CPU by process group per run.
func cpuMarkdown() string {
	var b strings.Builder
	b.WriteString("\nCPU from each run's first invocation to its end (/proc/<pid>/stat, user + system), in ms per invocation; harness = the service and the proxy (in the stand-in runs the proxy answers too: no emulator, no function); the last column is the records the functions (the stand-in) counted in their events:\n\n")
	b.WriteString("| run | window s | machine busy | harness | emulators | functions | kfake | other | total CPU s | records per invocation | records the functions counted |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range lambdaResults {
		if r.CPU == nil || r.Invocations == 0 {
			continue
		}
		per := func(g string) string { return fmt.Sprintf("%.2f", 1000*r.CPU[g]/float64(r.Invocations)) }
		var total float64
		for _, v := range r.CPU {
			total += v
		}
		fmt.Fprintf(&b, "| %s | %.1f | %.0f%% | %s | %s | %s | %s | %s | %.1f | %.1f | %d |\n", r.Name, r.CPUSecs, 100*r.CPUBusy,
			per("harness"), per("emulators"), per("functions"), per("kfake"), per("other"), total,
			float64(r.Records)/float64(r.Invocations), r.FnRecords)
	}
	return b.String()
}
