// Command harness is the end-to-end benchmark behind scripts/bench.sh (which
// builds everything, starts the broker and calls it). On one broker it
// preloads the same records for every contender, runs the contenders in
// turns (each round runs every contender once, so that machine drift hits
// all alike), measures records/s, CPU seconds per million records and peak
// RSS of each child process, then the latency at half of the service's
// throughput, the memory against a 1M and a 5M record backlog, and the
// memory table (memory.go: a full buffer, compressed topics). It writes
// the results as JSON and prints the markdown table of docs/BENCHMARKS.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/demo"
)

var (
	brokers     = flag.String("brokers", "127.0.0.1:39092", "bootstrap brokers")
	brokerName  = flag.String("broker-name", "kfake (own process)", "how the table names the broker")
	records     = flag.Int("records", 2_000_000, "records per size")
	sizesFlag   = flag.String("sizes", "200,1000", "approximate Avro value sizes in bytes")
	rounds      = flag.Int("rounds", 3, "rounds (turns): each runs every contender once")
	slowRounds  = flag.Int("slow-rounds", 3, "rounds that also run the Python contender (the slowest)")
	partitions  = flag.Int("partitions", 6, "partitions per topic")
	consumer    = flag.String("consumer", "bin/consumer", "the service binary")
	ceilingBin  = flag.String("ceiling", "bin/bench/ceiling", "the ceiling binary")
	python      = flag.String("python", "", "python of the venv with aiokafka and fastavro (empty: skip case 6)")
	nodeDir     = flag.String("node-dir", "", "dir with node_modules/@aws-lambda-powertools/kafka (empty: skip case 7)")
	benchDir    = flag.String("bench-dir", "test/bench", "the harness's scripts")
	distinct    = flag.Int("distinct-1k", 250_000, "distinct records of the ~1 KB topic, repeated up to -records")
	preloadOnly = flag.Bool("preload-only", false, "create and preload the topics, then exit (for profiling by hand)")
	tsRecords   = flag.Int("ts-records", 100_000, "records decoded by case 7")
	backlogs    = flag.String("backlogs", "1000000,5000000", "backlog sizes for the memory test (200 B records)")
	latDur      = flag.Duration("latency-duration", 20*time.Second, "length of the fixed-rate latency run")
	latLow      = flag.Int("latency-low-rate", 50_000, "a third latency run at this fixed rate (0: none)")
	outJSON     = flag.String("out", "bin/bench/results.json", "results JSON")
	outMD       = flag.String("md", "bin/bench/results.md", "results markdown")
	workDir     = flag.String("work", "bin/bench/work", "scratch dir (schema, events, logs)")
	command     = flag.String("command", "scripts/bench.sh", "the command line the table names")
)

// Result is one run of one contender.
type Result struct {
	Case      string  `json:"case"`
	Size      int     `json:"size"`
	Round     int     `json:"round"`
	Records   int64   `json:"records"`
	Seconds   float64 `json:"seconds"` // first record to last
	Rate      float64 `json:"records_per_s"`
	CPU       float64 `json:"cpu_s"` // utime+stime of the child
	CPUPerM   float64 `json:"cpu_s_per_million"`
	PerCore   float64 `json:"records_per_cpu_s"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
	Wall      float64 `json:"wall_s"` // process start to stop
	// Stall is the longest time the count stood still between the
	// first record and the last partial batches (serviceBin only).
	Stall   float64 `json:"longest_stall_s,omitempty"`
	StallAt int64   `json:"longest_stall_at,omitempty"` // records counted during it
	Err     string  `json:"error,omitempty"`
}

type Output struct {
	Date        string               `json:"date"`
	Machine     string               `json:"machine"`
	Load        string               `json:"loadavg_at_start"`
	LoadEnd     string               `json:"loadavg_at_end"`
	Broker      string               `json:"broker"`
	Command     string               `json:"command"`
	Records     int                  `json:"records_per_size"`
	Sizes       map[int]float64      `json:"value_bytes_avg"`
	Results     []Result             `json:"results"`
	Latency     []map[string]float64 `json:"latency"`
	Backlog     []Result             `json:"backlog"`
	Memory      []MemResult          `json:"memory,omitempty"`
	Handler     []HandlerResult      `json:"handler_bound,omitempty"`
	Lambda      []LambdaResult       `json:"lambda,omitempty"`
	Share       []ShareResult        `json:"share,omitempty"`
	MaxBuffered int64                `json:"max_buffered_bytes"`
}

var (
	out     Output
	prefix  = "b" + strconv.FormatInt(time.Now().Unix()%1_000_000, 10)
	seq     atomic.Int64
	schemaF string
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run() error {
	if err := os.MkdirAll(*workDir, 0o755); err != nil {
		return err
	}
	schemaF, _ = filepath.Abs(filepath.Join(*workDir, "product.avsc"))
	if err := os.WriteFile(schemaF, []byte(demo.Schema), 0o644); err != nil {
		return err
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return err
		}
		sizes = append(sizes, n)
	}
	out = Output{
		Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine: machine(), Load: loadavg(),
		Broker: *brokerName, Command: *command, Records: *records, Sizes: map[int]float64{},
		MaxBuffered: 64 << 20,
	}
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	switch *only {
	case "":
	case "memory":
		return memoryOnly(ctx, adm)
	case "handler":
		return handlerOnly(ctx, adm)
	case "stores":
		return storesOnly(ctx, adm)
	case "tracing":
		return tracingOnly(ctx, adm)
	case "dlq":
		return dlqOnly(ctx, adm)
	case "quick":
		return quickOnly(ctx, adm, sizes)
	case "speed":
		return speedOnly(ctx, adm, sizes)
	case "lambda":
		return lambdaOnly(ctx, adm)
	case "share":
		return shareOnly(ctx, adm)
	default:
		return fmt.Errorf("-only: %q is not memory, handler, stores, tracing, dlq, quick, speed, lambda or share", *only)
	}

	// Preload: one topic per size, one with 1% undecodable records, the
	// backlog topics; each with its dead-letter topic.
	topic := func(name string) string { return prefix + "-" + name }
	var bl []int
	for _, s := range strings.Split(*backlogs, ",") {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			bl = append(bl, n)
		}
	}
	var all []string
	for _, s := range sizes {
		all = append(all, topic(fmt.Sprintf("s%d", s)))
	}
	all = append(all, topic("bad200"), topic("lat0"), topic("lat1"), topic("lat2"))
	for _, n := range bl {
		all = append(all, topic(fmt.Sprintf("backlog%d", n)))
	}
	for _, t := range all {
		if err := createTopics(ctx, adm, t); err != nil {
			return err
		}
	}
	for _, s := range sizes {
		avg, err := preload(ctx, topic(fmt.Sprintf("s%d", s)), *records, s, 0)
		if err != nil {
			return err
		}
		out.Sizes[s] = avg
	}
	if _, err := preload(ctx, topic("bad200"), *records, 200, 100); err != nil {
		return err
	}

	if *preloadOnly {
		return nil
	}
	sink := newSink()
	defer sink.Close()
	n := int64(*records)

	// Case 7 input: the first records of each size topic, as MSK events.
	events := map[int]string{}
	if *nodeDir != "" {
		for _, s := range sizes {
			f, err := writeEvents(ctx, topic(fmt.Sprintf("s%d", s)), *tsRecords, s)
			if err != nil {
				return err
			}
			events[s] = f
		}
	}

	// The contenders, in turns.
	for r := 1; r <= *rounds; r++ {
		for _, s := range sizes {
			t := topic(fmt.Sprintf("s%d", s))
			add(ceiling(t, n), "1 ceiling", s, r)
			add(service(t, n, "bytes", "discard", sink, nil), "2 service bytes+discard", s, r)
			add(service(t, n, "avro", "discard", sink, nil), "3 service avro+discard", s, r)
			add(service(t, n, "avro", "discard", sink, keyOrder), "3k avro+discard, key order", s, r)
			add(service(t, n, "avro", "http", sink, nil), "4 service avro+http", s, r)
			if s == sizes[0] {
				add(service(topic("bad200"), n, "avro", "discard", sink, nil), "5 avro+discard, 1% to DLQ", s, r)
			}
			if *python != "" && r <= *slowRounds {
				add(pythonRun(t, n), "6 python aiokafka+fastavro", s, r)
			}
			if f := events[s]; f != "" {
				add(nodeRun(f), "7 powertools TS (decode only)", s, r)
			}
			writeOut()
		}
	}

	// Latency at half of case 3's throughput (200 B records).
	// Then at half of case 4's, which posts to the same sink, for context.
	c3 := median(sizes[0], "3 service avro+discard", func(r Result) float64 { return r.Rate })
	c4 := median(sizes[0], "4 service avro+http", func(r Result) float64 { return r.Rate })
	// And at a fixed low rate, where the machine is not saturated by the
	// producer, the broker, the service and the sink together.
	for i, rate := range []float64{c3 / 2, c4 / 2, float64(*latLow)} {
		if rate <= 0 {
			continue
		}
		if err := latency(ctx, cl, topic(fmt.Sprintf("lat%d", i)), rate, sink); err != nil {
			logf("latency: %v", err)
			continue
		}
		out.Latency[len(out.Latency)-1]["of_case"] = float64(3 + i)
	}
	// Memory against backlog, after the first topics are deleted (kfake
	// holds everything in memory).
	var done []string
	for _, s := range sizes {
		done = append(done, topic(fmt.Sprintf("s%d", s)))
	}
	done = append(done, topic("bad200"))
	if _, err := adm.DeleteTopics(ctx, done...); err != nil {
		logf("delete topics: %v", err)
	}
	var backlogTopics []string
	for _, b := range bl {
		backlogTopics = append(backlogTopics, topic(fmt.Sprintf("backlog%d", b)))
		if _, err := preload(ctx, topic(fmt.Sprintf("backlog%d", b)), b, 200, 0); err != nil {
			return err
		}
		r := service(topic(fmt.Sprintf("backlog%d", b)), int64(b), "avro", "discard", sink, nil)
		r.Case, r.Size, r.Round = fmt.Sprintf("3 backlog %d", b), 200, 1
		logf("%s: %.0f rec/s, rss %.0f MiB", r.Case, r.Rate, r.MaxRSSMiB)
		out.Backlog = append(out.Backlog, r)
	}
	if _, err := adm.DeleteTopics(ctx, backlogTopics...); err != nil {
		logf("delete topics: %v", err)
	}
	// Memory with a full buffer and compressed topics (memory.go).
	if err := runMemory(ctx, adm); err != nil {
		logf("memory: %v", err)
	}
	// Handler-bound throughput per PROCESSING_ORDER (handlerbound.go).
	if err := runHandlerBound(ctx, adm); err != nil {
		logf("handler-bound: %v", err)
	}
	// HANDLER=lambda on the emulator pool (lambda.go), where
	// scripts/lambda/setup.sh built the emulator.
	if err := runLambda(ctx, adm); err != nil {
		logf("lambda: %v", err)
		lambdaSkipped = err.Error()
	}
	// Share groups against consumer groups, 1 to 12 members (share.go).
	if err := runShare(ctx, adm); err != nil {
		logf("share: %v", err)
	}
	out.Handler = hbResults
	out.Lambda = lambdaResults
	out.Share = shareResults
	out.LoadEnd = loadavg()
	writeOut()
	md := markdown(sizes) + memoryMarkdown() + handlerMarkdown() + lambdaMarkdown() + shareMarkdown()
	fmt.Println(md)
	return os.WriteFile(*outMD, []byte(md), 0o644)
}

func add(r Result, name string, size, round int) {
	r.Case, r.Size, r.Round = name, size, round
	if r.Records > 0 && r.CPU > 0 {
		r.CPUPerM = r.CPU / float64(r.Records) * 1e6
		r.PerCore = float64(r.Records) / r.CPU
	}
	logf("%-32s %5dB round %d: %9.0f rec/s  cpu %6.2f s/M  rss %6.1f MiB %s", name, size, round, r.Rate, r.CPUPerM, r.MaxRSSMiB, r.Err)
	out.Results = append(out.Results, r)
}

func writeOut() {
	b, _ := json.MarshalIndent(out, "", "  ")
	_ = os.WriteFile(*outJSON, b, 0o644)
}

// preload produces n records of about size value bytes to topic.
func preload(ctx context.Context, topic string, n, size, badEvery int) (float64, error) {
	start := time.Now()
	g, err := demo.NewGenerator(uint64(size))
	if err != nil {
		return 0, err
	}
	g.BadEvery = badEvery
	g.Pad = max(size-70, 0) // the record without a description is about 70 bytes
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var (
		total    int64
		firstErr atomic.Value
	)
	// Generating is the slow part: two goroutines generate, one produces.
	// The Generator's Pad costs about 40 µs per 1 KB record (it builds the
	// description by repeated concatenation), so past *distinct records the
	// ones generated are produced again, in the same order.
	limit := n
	if size >= 500 {
		limit = min(n, *distinct)
	}
	ch := make(chan *kgo.Record, 4096)
	go func() {
		defer close(ch)
		var pool []*kgo.Record
		for i := range n {
			var r *kgo.Record
			if i < limit {
				var err error
				if r, _, err = g.Next(topic); err != nil {
					firstErr.Store(err)
					return
				}
				if limit < n {
					c := *r
					pool = append(pool, &c)
				}
			} else {
				c := *pool[i%limit]
				r = &c
			}
			total += int64(len(r.Value))
			ch <- r
		}
	}()
	for r := range ch {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if e := firstErr.Load(); e != nil {
		return 0, e.(error)
	}
	avg := float64(total) / float64(n)
	logf("preloaded %s: %d records, %.0f B values, %s", topic, n, avg, time.Since(start).Round(time.Millisecond))
	return avg, nil
}

// child runs a process and returns its rusage figures.
type child struct {
	cmd   *exec.Cmd
	start time.Time
	log   *os.File
	hwm   atomic.Int64 // peak VmHWM seen, kB
	quit  chan struct{}
}

// vmHWM returns the peak resident set of a process in kB, from
// /proc/<pid>/status. It is used instead of rusage's ru_maxrss, which on
// Linux carries over the parent's peak into an exec'd child (the harness's
// own RSS would be reported for every small child).
func vmHWM(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	return 0
}

func (c *child) pollHWM() {
	pid := strconv.Itoa(c.cmd.Process.Pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if v := vmHWM(pid); v > c.hwm.Load() {
			c.hwm.Store(v)
		}
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
	}
}

func startChild(name string, env []string, stdout io.Writer, args ...string) (*child, error) {
	return startChildWith(name, append(os.Environ(), env...), stdout, args...)
}

// startChildWith is startChild with the child's whole environment given.
func startChildWith(name string, env []string, stdout io.Writer, args ...string) (*child, error) {
	lf, err := os.Create(filepath.Join(*workDir, fmt.Sprintf("%03d-%s.log", seq.Add(1), name)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stderr = lf
	cmd.Stdout = lf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	c := &child{cmd: cmd, log: lf, quit: make(chan struct{})}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	go c.pollHWM()
	return c, nil
}

func (c *child) wait(r *Result) error {
	err := c.cmd.Wait()
	close(c.quit)
	c.log.Close()
	r.Wall = time.Since(c.start).Seconds()
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = tv(ru.Utime) + tv(ru.Stime)
	}
	r.MaxRSSMiB = float64(c.hwm.Load()) / 1024
	return err
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

type span struct {
	HWMkB   int64 `json:"hwm_kb"`
	Count   int64 `json:"count"`
	FirstNS int64 `json:"first_ns"`
	LastNS  int64 `json:"last_ns"`
}

func (s span) result() Result {
	r := Result{Records: s.Count}
	if s.LastNS > s.FirstNS {
		r.Seconds = float64(s.LastNS-s.FirstNS) / 1e9
		r.Rate = float64(s.Count) / r.Seconds
	}
	return r
}

func group(name string) string { return fmt.Sprintf("%s-%s-%d", prefix, name, seq.Add(1)) }

func ceiling(topic string, n int64) Result {
	var buf bytes.Buffer
	c, err := startChild("ceiling", nil, &buf, *ceilingBin, "-brokers", *brokers, "-topic", topic,
		"-group", group("ceiling"), "-n", strconv.FormatInt(n, 10))
	if err != nil {
		return Result{Err: err.Error()}
	}
	var r Result
	werr := c.wait(&r)
	var s span
	if err := json.Unmarshal(buf.Bytes(), &s); err != nil {
		return Result{Err: fmt.Sprintf("ceiling: %v %v %q", werr, err, buf.String())}
	}
	res := s.result()
	res.CPU, res.MaxRSSMiB, res.Wall = r.CPU, max(r.MaxRSSMiB, float64(s.HWMkB)/1024), r.Wall
	return res
}

func pythonRun(topic string, n int64) Result {
	var buf bytes.Buffer
	c, err := startChild("python", nil, &buf, *python, filepath.Join(*benchDir, "python", "consumer.py"),
		"--brokers", *brokers, "--topic", topic, "--group", group("python"),
		"--n", strconv.FormatInt(n, 10), "--schema", schemaF)
	if err != nil {
		return Result{Err: err.Error()}
	}
	var r Result
	werr := c.wait(&r)
	var s span
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &s); err != nil {
		return Result{Err: fmt.Sprintf("python: %v %v", werr, err)}
	}
	res := s.result()
	res.CPU, res.MaxRSSMiB, res.Wall = r.CPU, max(r.MaxRSSMiB, float64(s.HWMkB)/1024), r.Wall
	return res
}

func nodeRun(events string) Result {
	var buf bytes.Buffer
	script, _ := filepath.Abs(filepath.Join(*benchDir, "node", "decode.mjs"))
	// Node resolves packages from the script's directory upwards, so the
	// script is copied next to the cached node_modules.
	dst := filepath.Join(*nodeDir, "decode.mjs")
	if b, err := os.ReadFile(script); err == nil {
		_ = os.WriteFile(dst, b, 0o644)
	}
	c, err := startChild("node", nil, &buf, "node", dst, events, schemaF)
	if err != nil {
		return Result{Err: err.Error()}
	}
	var r Result
	werr := c.wait(&r)
	var s struct {
		Records int64   `json:"records"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &s); err != nil || s.Seconds == 0 {
		return Result{Err: fmt.Sprintf("node: %v %v %q", werr, err, buf.String())}
	}
	// One thread: the decode time is the CPU time of the decoding.
	return Result{Records: s.Records, Seconds: s.Seconds, Rate: float64(s.Records) / s.Seconds,
		CPU: s.Seconds, MaxRSSMiB: r.MaxRSSMiB, Wall: r.Wall}
}

// writeEvents reads the first n records of topic and writes them as MSK
// events of 500 records (Lambda's default batch), key and value base64.
func writeEvents(ctx context.Context, topic string, n, size int) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	type rec struct {
		Topic         string              `json:"topic"`
		Partition     int32               `json:"partition"`
		Offset        int64               `json:"offset"`
		Timestamp     int64               `json:"timestamp"`
		TimestampType string              `json:"timestampType"`
		Key           string              `json:"key"`
		Value         string              `json:"value"`
		Headers       []map[string][]byte `json:"headers"`
	}
	type event struct {
		EventSource      string           `json:"eventSource"`
		EventSourceArn   string           `json:"eventSourceArn"`
		BootstrapServers string           `json:"bootstrapServers"`
		Records          map[string][]rec `json:"records"`
	}
	var evs []event
	var cur []rec
	flush := func() {
		if len(cur) == 0 {
			return
		}
		evs = append(evs, event{
			EventSource:      "aws:kafka",
			EventSourceArn:   "arn:aws:kafka:eu-west-1:123456789012:cluster/bench/abc",
			BootstrapServers: *brokers,
			Records:          map[string][]rec{topic + "-0": cur},
		})
		cur = nil
	}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if got >= n {
				return
			}
			got++
			var hs []map[string][]byte
			for _, h := range r.Headers {
				hs = append(hs, map[string][]byte{h.Key: h.Value})
			}
			cur = append(cur, rec{
				Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Timestamp: r.Timestamp.UnixMilli(), TimestampType: "CREATE_TIME",
				Key: base64.StdEncoding.EncodeToString(r.Key), Value: base64.StdEncoding.EncodeToString(r.Value),
				Headers: hs,
			})
			if len(cur) == 500 {
				flush()
			}
		})
	}
	flush()
	f := filepath.Join(*workDir, fmt.Sprintf("events-%d.json", size))
	abs, _ := filepath.Abs(f)
	fh, err := os.Create(abs)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	// Lambda sends header values as arrays of byte numbers.
	w := bufio.NewWriter(fh)
	if err := json.NewEncoder(w).Encode(byteArrays(evs)); err != nil {
		return "", err
	}
	return abs, w.Flush()
}

// byteArrays re-encodes []byte header values as JSON arrays of numbers
// (encoding/json would write base64).
func byteArrays(v any) any {
	b, _ := json.Marshal(v)
	var generic any
	_ = json.Unmarshal(b, &generic)
	var walk func(x any, inHeaders bool) any
	walk = func(x any, inHeaders bool) any {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				if k == "headers" {
					if arr, ok := v.([]any); ok {
						for _, h := range arr {
							if m, ok := h.(map[string]any); ok {
								for hk, hv := range m {
									if s, ok := hv.(string); ok {
										raw, _ := base64.StdEncoding.DecodeString(s)
										nums := make([]int, len(raw))
										for i, c := range raw {
											nums[i] = int(c)
										}
										m[hk] = nums
									}
								}
							}
						}
					}
					continue
				}
				t[k] = walk(v, false)
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i], inHeaders)
			}
		}
		return x
	}
	return walk(generic, false)
}

// service runs bin/consumer on topic until /metrics counts n records
// processed or dead-lettered, then stops it with SIGTERM.
func service(topic string, n int64, format, handler string, sink *sink, extra []string) Result {
	return serviceBin(*consumer, topic, n, format, handler, sink, extra)
}

// serviceBin is service with the binary bin (-only quick runs two).
func serviceBin(bin, topic string, n int64, format, handler string, sink *sink, extra []string) Result {
	port := freePort()
	env := []string{
		"KAFKA_BROKERS=" + *brokers, "KAFKA_TOPICS=" + topic, "KAFKA_GROUP_ID=" + group("svc"),
		"KAFKA_AUTH=none", "VALUE_FORMAT=" + format, "HANDLER=" + handler,
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(port), "SHUTDOWN_TIMEOUT=10s",
	}
	if format == "avro" {
		env = append(env, "VALUE_SCHEMA_FILE="+schemaF)
	}
	if handler == "http" {
		env = append(env, "HTTP_HANDLER_URL="+sink.url)
	}
	env = append(env, extra...)
	c, err := startChild("service-"+format+"-"+handler, env, nil, bin)
	if err != nil {
		return Result{Err: err.Error()}
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	// The rate is taken from the first scrape that counts records to the
	// first that counts all but the last partial batch of each partition:
	// those wait BATCH_MAX_WAIT by design at the end of a backlog, which is
	// latency, not throughput. Completion still waits for all n.
	// With PROCESSING_ORDER key or none every lane has its last partial
	// batch: PARTITION_CONCURRENCY of them per partition.
	tail := n - int64(*partitions)*int64(lanesOf(extra))*500
	var (
		first    time.Time
		firstCnt int64
		bulk     time.Time
		bulkCnt  int64
		done     time.Time
		errMsg   string
		lastCnt  int64
		moved    time.Time // when the count last moved, before bulk
		stall    time.Duration
		stallAt  int64 // the count during the longest stall
	)
	deadline := time.Now().Add(8 * time.Minute)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		time.Sleep(50 * time.Millisecond)
		if c.cmd.ProcessState != nil || time.Now().After(deadline) {
			errMsg = "did not finish"
			break
		}
		cnt, err := scrape(hc, url)
		now := time.Now()
		if err != nil {
			continue
		}
		if cnt > 0 && first.IsZero() {
			first, firstCnt, moved = now, cnt, now
		}
		if !first.IsZero() && bulk.IsZero() && cnt != lastCnt {
			if d := now.Sub(moved); d > stall {
				stall, stallAt = d, lastCnt
			}
			moved = now
		}
		lastCnt = cnt
		if cnt >= tail && bulk.IsZero() {
			bulk, bulkCnt = now, cnt
		}
		if cnt >= n {
			done = now
			break
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var r Result
	if err := c.wait(&r); err != nil && errMsg == "" {
		errMsg = "exit: " + err.Error()
	}
	r.Err = errMsg
	if !done.IsZero() && bulk.After(first) {
		r.Records = n
		r.Seconds = bulk.Sub(first).Seconds()
		r.Rate = float64(bulkCnt-firstCnt) / r.Seconds
		r.Stall, r.StallAt = stall.Seconds(), stallAt
	}
	return r
}

// keyOrder is the environment of case 3k: case 3 in PROCESSING_ORDER=key,
// PARTITION_CONCURRENCY at its default (8 lanes per partition).
var keyOrder = []string{"PROCESSING_ORDER=key"}

// lanesOf returns the lanes per partition that the environment env sets
// up: PARTITION_CONCURRENCY (default 8) with PROCESSING_ORDER key or none,
// else 1.
func lanesOf(env []string) int {
	order, lanes := "partition", 8
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PROCESSING_ORDER":
			order = v
		case "PARTITION_CONCURRENCY":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				lanes = n
			}
		}
	}
	if order == "partition" {
		return 1
	}
	return lanes
}

// createTopics creates topic (*partitions partitions) and its dead-letter
// topic (one partition).
func createTopics(ctx context.Context, adm *kadm.Client, topic string) error {
	if _, err := adm.CreateTopic(ctx, int32(*partitions), 1, nil, topic); err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic+".dlq"); err != nil {
		return fmt.Errorf("create %s.dlq: %w", topic, err)
	}
	return nil
}

func scrape(hc *http.Client, url string) (int64, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var total int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("consumer_records_total{")) {
			continue
		}
		if !bytes.Contains(line, []byte(`outcome="processed"`)) && !bytes.Contains(line, []byte(`outcome="dead_lettered"`)) {
			continue
		}
		i := bytes.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err == nil {
			total += int64(v)
		}
	}
	return total, sc.Err()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 19190
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sink is the HTTP handler's target: 200 with no body. In latency mode it
// reads every record's "timestamp" and keeps now minus it.
type sink struct {
	srv     *http.Server
	url     string
	measure atomic.Bool
	mu      sync.Mutex
	lat     []int64 // microseconds
}

var tsKey = []byte(`"timestamp":"`)

func newSink() *sink {
	s := &sink{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s.url = "http://" + l.Addr().String() + "/batch"
	pool := sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bp := pool.Get().(*[]byte)
		buf := bytes.NewBuffer((*bp)[:0])
		_, _ = buf.ReadFrom(r.Body)
		if s.measure.Load() {
			now := time.Now()
			body := buf.Bytes()
			var local []int64
			for {
				i := bytes.Index(body, tsKey)
				if i < 0 {
					break
				}
				body = body[i+len(tsKey):]
				if len(body) < 24 {
					break
				}
				t, err := time.Parse("2006-01-02T15:04:05.000Z", string(body[:24]))
				if err == nil {
					local = append(local, now.Sub(t).Microseconds())
				}
			}
			s.mu.Lock()
			s.lat = append(s.lat, local...)
			s.mu.Unlock()
		}
		*bp = buf.Bytes()[:0]
		pool.Put(bp)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = s.srv.Serve(l) }()
	return s
}

func (s *sink) Close() { _ = s.srv.Close() }

// latency runs the service (Avro, HTTP handler to the sink) while a producer
// writes 200 B records at rate per second with current timestamps, and
// takes p50/p99 of produce-to-handler time from the sink, after a warm-up.
func latency(ctx context.Context, _ *kgo.Client, topic string, rate float64, sink *sink) error {
	logf("latency: %.0f records/s for %s", rate, *latDur)
	g, err := demo.NewGenerator(7)
	if err != nil {
		return err
	}
	g.Pad = 130
	pool := make([]*kgo.Record, 20000)
	for i := range pool {
		if pool[i], _, err = g.Next(topic); err != nil {
			return err
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(1_000_000))
	if err != nil {
		return err
	}
	defer prod.Close()

	// The service first, joined before producing starts.
	port := freePort()
	env := []string{
		"KAFKA_BROKERS=" + *brokers, "KAFKA_TOPICS=" + topic, "KAFKA_GROUP_ID=" + group("lat"),
		"KAFKA_AUTH=none", "VALUE_FORMAT=avro", "VALUE_SCHEMA_FILE=" + schemaF, "HANDLER=http",
		"HTTP_HANDLER_URL=" + sink.url, "METRICS_ADDR=127.0.0.1:" + strconv.Itoa(port), "SHUTDOWN_TIMEOUT=10s",
	}
	c, err := startChild("service-latency", env, nil, *consumer)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for range 200 {
		time.Sleep(50 * time.Millisecond)
		if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte("consumer_assigned_partitions "+strconv.Itoa(*partitions))) {
				break
			}
		}
	}
	warm := 3 * time.Second
	start := time.Now()
	end := start.Add(*latDur + warm)
	var sent int64
	tick := time.NewTicker(time.Millisecond)
	i := 0
	for now := range tick.C {
		if now.After(end) {
			break
		}
		if !sink.measure.Load() && now.Sub(start) >= warm {
			sink.measure.Store(true)
		}
		want := int64(now.Sub(start).Seconds() * rate)
		for ; sent < want; sent++ {
			src := pool[i%len(pool)]
			i++
			r := &kgo.Record{Topic: topic, Key: src.Key, Value: src.Value, Headers: src.Headers, Timestamp: time.Now()}
			prod.Produce(ctx, r, nil)
		}
	}
	tick.Stop()
	_ = prod.Flush(ctx)
	// Every record produced is measured: when the service falls behind,
	// the backlog's latency is the result.
	murl := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	for wait := time.Now().Add(90 * time.Second); time.Now().Before(wait); {
		if n, err := scrape(hc, murl); err == nil && n >= sent {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sink.measure.Store(false)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	var r Result
	_ = c.wait(&r)
	sink.mu.Lock()
	lat := slices.Clone(sink.lat)
	sink.lat = nil
	sink.mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		return errors.New("no latencies")
	}
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1000 }
	elapsed := time.Since(start).Seconds()
	out.Latency = append(out.Latency, map[string]float64{
		"rate_target": rate, "rate_produced": float64(sent) / (*latDur + warm).Seconds(),
		"samples": float64(len(lat)), "p50_ms": q(0.50), "p99_ms": q(0.99), "p999_ms": q(0.999),
		"max_ms": float64(lat[len(lat)-1]) / 1000, "batch_max_wait_ms": 3000,
		"service_cpu_s": r.CPU, "elapsed_s": elapsed,
	})
	logf("latency: p50 %.1f ms p99 %.1f ms (%d samples)", q(0.5), q(0.99), len(lat))
	return nil
}

func median(size int, name string, f func(Result) float64) float64 {
	var v []float64
	for _, r := range out.Results {
		if r.Size == size && r.Case == name && r.Err == "" && r.Records > 0 {
			v = append(v, f(r))
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d vCPU, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func markdown(sizes []int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s, at end %s  \n",
		out.Command, out.Machine, out.Date, out.Load, out.LoadEnd)
	fmt.Fprintf(&b, "Broker: %s, %d partitions per topic, no compression; %d records per size, preloaded once; %d round(s) in turns (medians shown; Python ran in %d)  \n",
		out.Broker, *partitions, out.Records, *rounds, min(*slowRounds, *rounds))
	var sz []string
	for _, s := range sizes {
		sz = append(sz, fmt.Sprintf("~%d B → %.0f B average Avro value", s, out.Sizes[s]))
	}
	fmt.Fprintf(&b, "Records: %s (internal/demo Generator, Pad; the ~1 KB topic repeats its first %d records); key `SKU-nnnnnn`, one header; case 5 on its own topic with BadEvery=100.\n\n", strings.Join(sz, ", "), *distinct)
	b.WriteString("| case | size | records/s | × ceiling | CPU s per M records | records per CPU-second | peak RSS MiB |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var names []string
	for _, r := range out.Results {
		if !slices.Contains(names, r.Case) {
			names = append(names, r.Case)
		}
	}
	slices.Sort(names)
	for _, s := range sizes {
		ceil := median(s, "1 ceiling", func(r Result) float64 { return r.Rate })
		for _, name := range names {
			rate := median(s, name, func(r Result) float64 { return r.Rate })
			if rate == 0 {
				continue
			}
			ratio := "–"
			if ceil > 0 && !strings.HasPrefix(name, "7") {
				ratio = fmt.Sprintf("%.2f", rate/ceil)
			}
			fmt.Fprintf(&b, "| %s | %d B | %.0f | %s | %.2f | %.0f | %.0f |\n", name, s, rate, ratio,
				median(s, name, func(r Result) float64 { return r.CPUPerM }),
				median(s, name, func(r Result) float64 { return r.PerCore }),
				median(s, name, func(r Result) float64 { return r.MaxRSSMiB }))
		}
	}
	b.WriteString("\nGoals (same run):\n\n| goal | measured | holds |\n| --- | --- | --- |\n")
	goal := func(name string, v, target float64, format string) {
		holds := "yes"
		if v < target {
			holds = fmt.Sprintf("**no** (%.0f%% short)", (1-v/target)*100)
		}
		fmt.Fprintf(&b, "| %s | "+format+" | %s |\n", name, v, holds)
	}
	for _, s := range sizes {
		m := func(n string) float64 { return median(s, n, func(r Result) float64 { return r.Rate }) }
		pc := func(n string) float64 { return median(s, n, func(r Result) float64 { return r.PerCore }) }
		c1, c2, c3, c4, c6, c7 := m("1 ceiling"), m("2 service bytes+discard"), m("3 service avro+discard"),
			m("4 service avro+http"), m("6 python aiokafka+fastavro"), pc("7 powertools TS (decode only)")
		_ = c4
		if c1 > 0 {
			goal(fmt.Sprintf("%d B: case 2 ≥ 0.85 × case 1", s), c2/c1, 0.85, "%.2f ×")
			goal(fmt.Sprintf("%d B: case 3 ≥ 0.5 × case 1", s), c3/c1, 0.5, "%.2f ×")
		}
		if c3k := m("3k avro+discard, key order"); c3k > 0 && c3 > 0 {
			goal(fmt.Sprintf("%d B: case 3k (key order) ≥ 0.9 × case 3 (partition order)", s), c3k/c3, 0.9, "%.2f ×")
		}
		if c5 := m("5 avro+discard, 1% to DLQ"); c5 > 0 && c3 > 0 {
			goal(fmt.Sprintf("%d B: case 5 ≥ 0.9 × case 3", s), c5/c3, 0.9, "%.2f ×")
		}
		if c6 > 0 {
			goal(fmt.Sprintf("%d B: case 3 ≥ 5 × case 6", s), c3/c6, 5, "%.1f ×")
		}
		if c7 > 0 {
			goal(fmt.Sprintf("%d B: case 3 per core ≥ 20 × case 7 per core", s), pc("3 service avro+discard")/c7, 20, "%.1f ×")
		}
	}
	for _, l := range out.Latency {
		goal := "context (not a goal)"
		if l["of_case"] == 3 {
			goal = map[bool]string{true: "yes", false: "**no**"}[l["p99_ms"] <= 3010]
		}
		at := fmt.Sprintf("half of case %.0f", l["of_case"])
		if l["of_case"] == 5 {
			at = "fixed low rate"
		}
		fmt.Fprintf(&b, "| p99 produce-to-handler latency ≤ BATCH_MAX_WAIT (3 s) + 10 ms, at %.0f records/s (%s, 200 B, HTTP handler, %s) | p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms (%.0f samples) | %s |\n",
			l["rate_produced"], at, *latDur, l["p50_ms"], l["p99_ms"], l["p999_ms"], l["max_ms"], l["samples"], goal)
	}
	if len(out.Backlog) == 2 {
		a, z := out.Backlog[0].MaxRSSMiB, out.Backlog[1].MaxRSSMiB
		fmt.Fprintf(&b, "| peak RSS with the larger backlog within 10%% of the smaller | %s: %.0f MiB, %s: %.0f MiB (%+.1f%%) | %s |\n",
			out.Backlog[0].Case, a, out.Backlog[1].Case, z, (z/a-1)*100,
			map[bool]string{true: "yes", false: "**no**"}[z <= a*1.1])
		fmt.Fprintf(&b, "| peak RSS bounded by MAX_BUFFERED_BYTES (64 MiB) + a fixed overhead | %.0f MiB = 64 + %.0f MiB | see below |\n",
			z, z-64)
	}
	return b.String()
}
