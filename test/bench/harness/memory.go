package main

// The memory table: peak RSS of the service against the bound of the
// design, peak RSS ≤ 3 × MAX_BUFFERED_BYTES + 48 MiB, with the buffer kept
// full (a handler slower than the fetches, or dead-lettering) and with
// compressed topics, whose fetch sizes count compressed bytes. Runs at the
// end of the benchmark, or alone with -only memory.

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/demo"
)

var (
	only       = flag.String("only", "", `"memory": run only the memory table (no throughput, latency or backlog runs); "handler": only the handler-bound section (ordering modes); "lambda": only the Lambda section (HANDLER=lambda on the emulator pool); "share": only the share-group section (share against consumer group, 1 to 12 members); "speed": only the throughput cases, with each one's spread; "quick": make bench-quick`)
	memBudgets = flag.String("mem-budgets", "16,64", "MAX_BUFFERED_BYTES of the memory table, in MiB")
	memRecords = flag.Int("mem-records", 200_000, "records per memory case")
	memSlow    = flag.Duration("mem-slow", 200*time.Millisecond, "the slow handler's time per batch (an HTTP sink that sleeps)")
	memLimits  = flag.String("mem-gomemlimit", "default", `GOMEMLIMIT settings to run each case with, comma-separated: "default" leaves it unset (the service's own default), "off" or a value sets it`)
	memCases   = flag.String("mem-cases", "", "run only the memory cases whose name contains one of these \"|\"-separated strings (e.g. \"zstd|DLQ\")")
)

// MemResult is one memory case at one budget.
type MemResult struct {
	Case          string  `json:"case"`
	BudgetMiB     int     `json:"max_buffered_mib"`
	GoMemLimit    string  `json:"gomemlimit"`        // as given to the child ("default": unset)
	LimitChosen   string  `json:"memory_limit_used"` // from the service's log line
	Codec         string  `json:"codec"`
	Ratio         float64 `json:"compression_ratio"`
	ValueBytes    float64 `json:"value_bytes_avg"`
	Records       int64   `json:"records"`
	Rate          float64 `json:"records_per_s"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
	PeakHeapMiB   float64 `json:"peak_heap_inuse_mib"` // max of go_memstats_heap_inuse_bytes scraped every 50 ms
	PeakBufferMiB float64 `json:"peak_buffered_mib"`   // max of consumer_buffered_bytes
	BoundMiB      float64 `json:"bound_mib"`
	Pass          bool    `json:"pass"`
	CPU           float64 `json:"cpu_s"`
	Err           string  `json:"error,omitempty"`
}

// memCase is one workload of the memory table.
type memCase struct {
	name    string
	codec   string // none, snappy, lz4, zstd
	json    bool   // repetitive ~1 KB JSON values; else ~200 B Avro (internal/demo)
	bad     int    // every bad-th record undecodable (0: none)
	slow    bool   // the slow HTTP handler; else discard
	topic   string
	ratio   float64
	avgSize float64
}

func memoryCases() []*memCase {
	all := []*memCase{
		{name: "1 KB JSON, none, slow handler", codec: "none", json: true, slow: true},
		{name: "1 KB JSON, snappy (client default), slow handler", codec: "snappy", json: true, slow: true},
		{name: "1 KB JSON, lz4, slow handler", codec: "lz4", json: true, slow: true},
		{name: "1 KB JSON, zstd, slow handler", codec: "zstd", json: true, slow: true},
		{name: "1 KB JSON, zstd, discard", codec: "zstd", json: true},
		{name: "1 KB JSON, zstd, 1% to DLQ, discard", codec: "zstd", json: true, bad: 100},
		{name: "200 B Avro, none, slow handler", codec: "none", slow: true},
		{name: "200 B Avro, none, 1% to DLQ, discard", codec: "none", bad: 100},
	}
	if *memCases == "" {
		return all
	}
	var sel []*memCase
	for _, c := range all {
		for _, w := range strings.Split(*memCases, "|") {
			if w != "" && strings.Contains(c.name, w) {
				sel = append(sel, c)
				break
			}
		}
	}
	return sel
}

func codecOf(name string) kgo.CompressionCodec {
	switch name {
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// jsonValue is a ~1 KB JSON product whose text repeats from record to
// record but for a few numbers: compression ratios of 10-40 (snappy, lz4)
// and more with zstd. Every bad-th one is cut short (invalid JSON).
func jsonValue(i int64, bad bool) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":%d,"sku":"SKU-%06d","name":"Product %d","brand":"Acme","category":"garden/tools","price":%d.99,"currency":"EUR","stock":%d,"tags":["outdoor","steel","warranty-2y"],"attributes":{"color":"green","weight_g":%d,"width_mm":120,"height_mm":340},"description":"`,
		i, i%1_000_000, i, 10+i%90, i%500, 100+i%900)
	for b.Len() < 1000 {
		b.WriteString("A sturdy, well balanced tool for every garden. ")
	}
	b.WriteString(`"}`)
	if bad {
		return b.Bytes()[:b.Len()/2]
	}
	return b.Bytes()
}

// preloadMem writes n records of c to its topic with its codec, and
// measures the compression ratio from the producer's batch metrics.
func preloadMem(ctx context.Context, c *memCase, n int) error {
	start := time.Now()
	var raw, comp atomic.Int64
	hook := produceRatio{raw: &raw, comp: &comp}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ProducerBatchCompression(codecOf(c.codec)),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000),
		kgo.WithHooks(hook),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	var (
		total    int64
		firstErr atomic.Value
	)
	produce := func(r *kgo.Record) {
		total += int64(len(r.Value))
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if c.json {
		for i := range int64(n) {
			bad := c.bad > 0 && i%int64(c.bad) == int64(c.bad-1)
			produce(&kgo.Record{Topic: c.topic, Key: fmt.Appendf(nil, "SKU-%06d", i%1_000_000), Value: jsonValue(i, bad)})
		}
	} else {
		g, err := demo.NewGenerator(uint64(len(c.topic)))
		if err != nil {
			return err
		}
		g.BadEvery = c.bad
		g.Pad = 130 // about 200 B Avro values, as in the throughput table
		for range n {
			r, _, err := g.Next(c.topic)
			if err != nil {
				return err
			}
			produce(r)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	c.avgSize = float64(total) / float64(n)
	c.ratio = 1
	if comp.Load() > 0 {
		c.ratio = float64(raw.Load()) / float64(comp.Load())
	}
	logf("preloaded %s (%s): %d records, %.0f B values, ratio %.1f, %s", c.topic, c.codec, n, c.avgSize, c.ratio, time.Since(start).Round(time.Millisecond))
	return nil
}

type produceRatio struct{ raw, comp *atomic.Int64 }

var _ kgo.HookProduceBatchWritten = produceRatio{}

func (h produceRatio) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.raw.Add(int64(m.UncompressedBytes))
	h.comp.Add(int64(m.CompressedBytes))
}

// slowSink answers every POST with 200 after a fixed delay: a handler that
// is slower than the fetches, so that the buffer stays full.
type slowSink struct {
	srv *http.Server
	url string
}

func newSlowSink(delay time.Duration) *slowSink {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &slowSink{url: "http://" + l.Addr().String() + "/batch"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(delay)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = s.srv.Serve(l) }()
	return s
}

func (s *slowSink) Close() { _ = s.srv.Close() }

// runMemory runs the memory table: every case at every budget and every
// GOMEMLIMIT setting, one at a time, each on its own preloaded topic.
func runMemory(ctx context.Context, adm *kadm.Client) error {
	var budgets []int
	for _, s := range strings.Split(*memBudgets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-mem-budgets: bad %q", s)
		}
		budgets = append(budgets, n)
	}
	limits := strings.Split(*memLimits, ",")
	slow := newSlowSink(*memSlow)
	defer slow.Close()
	for i, c := range memoryCases() {
		c.topic = fmt.Sprintf("%s-mem%d-%s", prefix, i, c.codec)
		if err := createTopics(ctx, adm, c.topic); err != nil {
			return err
		}
		if err := preloadMem(ctx, c, *memRecords); err != nil {
			return err
		}
		for _, b := range budgets {
			for _, lim := range limits {
				r := memService(c, b, strings.TrimSpace(lim), slow.url)
				logf("memory %-44s %3d MiB GOMEMLIMIT=%-7s: %8.0f rec/s rss %6.1f MiB (bound %.0f, heap %.1f, buffered %.1f) limit %s %s",
					c.name, b, r.GoMemLimit, r.Rate, r.PeakRSSMiB, r.BoundMiB, r.PeakHeapMiB, r.PeakBufferMiB, r.LimitChosen, r.Err)
				out.Memory = append(out.Memory, r)
				writeOut()
			}
		}
		// kfake holds every record in memory.
		if _, err := adm.DeleteTopics(ctx, c.topic, c.topic+".dlq"); err != nil {
			logf("delete %s: %v", c.topic, err)
		}
	}
	return nil
}

var limitRE = regexp.MustCompile(`"limit":"([^"]+)"`)

// memService runs bin/consumer over the case's topic until /metrics counts
// every record processed or dead-lettered, scraping its heap and buffer
// every 50 ms, then stops it with SIGTERM.
func memService(c *memCase, budgetMiB int, gomemlimit, sinkURL string) MemResult {
	res := MemResult{
		Case: c.name, BudgetMiB: budgetMiB, GoMemLimit: gomemlimit, Codec: c.codec, Ratio: c.ratio,
		ValueBytes: c.avgSize, BoundMiB: float64(3*budgetMiB + 48),
	}
	port := freePort()
	format, handler := "json", "discard"
	if !c.json {
		format = "avro"
	}
	if c.slow {
		handler = "http"
	}
	env := []string{
		"KAFKA_BROKERS=" + *brokers, "KAFKA_TOPICS=" + c.topic, "KAFKA_GROUP_ID=" + group("mem"),
		"KAFKA_AUTH=none", "VALUE_FORMAT=" + format, "HANDLER=" + handler,
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(port), "SHUTDOWN_TIMEOUT=10s",
		"MAX_BUFFERED_BYTES=" + strconv.Itoa(budgetMiB<<20),
	}
	if !c.json {
		env = append(env, "VALUE_SCHEMA_FILE="+schemaF)
	}
	if c.slow {
		env = append(env, "HTTP_HANDLER_URL="+sinkURL)
	}
	if gomemlimit != "default" {
		env = append(env, "GOMEMLIMIT="+gomemlimit)
	}
	// The service's own GOMEMLIMIT default applies only when the
	// environment has none: the harness's own must not leak in.
	base := os.Environ()
	for i := 0; i < len(base); i++ {
		if strings.HasPrefix(base[i], "GOMEMLIMIT=") || strings.HasPrefix(base[i], "GOGC=") {
			base = append(base[:i], base[i+1:]...)
			i--
		}
	}
	ch, err := startChildWith("mem-"+c.codec, append(base, env...), nil, *consumer)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	n := int64(*memRecords)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	hc := &http.Client{Timeout: 2 * time.Second}
	// The rate runs to all but the last partial batch of each partition,
	// which waits BATCH_MAX_WAIT by design (as in service()).
	tail := n - int64(*partitions)*500
	var (
		first, bulk       time.Time
		firstCnt, bulkCnt int64
		lastCnt           int64
		heap, buf         float64
	)
	deadline := time.Now().Add(8 * time.Minute)
	for {
		time.Sleep(50 * time.Millisecond)
		if ch.cmd.ProcessState != nil || time.Now().After(deadline) {
			res.Err = "did not finish"
			break
		}
		m, err := scrapeAll(hc, url)
		if err != nil {
			continue
		}
		now := time.Now()
		heap = max(heap, m["go_memstats_heap_inuse_bytes"])
		buf = max(buf, m["consumer_buffered_bytes"])
		cnt := int64(m["records"])
		if cnt > 0 && first.IsZero() {
			first, firstCnt = now, cnt
		}
		if cnt >= tail && bulk.IsZero() {
			bulk, bulkCnt = now, cnt
		}
		lastCnt = max(lastCnt, cnt)
		if cnt >= n {
			break
		}
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	var r Result
	if err := ch.wait(&r); err != nil && res.Err == "" {
		res.Err = "exit: " + err.Error()
	}
	res.Records, res.CPU = lastCnt, r.CPU
	if bulk.After(first) {
		res.Rate = float64(bulkCnt-firstCnt) / bulk.Sub(first).Seconds()
	}
	res.PeakRSSMiB = r.MaxRSSMiB
	res.PeakHeapMiB, res.PeakBufferMiB = heap/(1<<20), buf/(1<<20)
	res.Pass = res.Err == "" && res.PeakRSSMiB > 0 && res.PeakRSSMiB <= res.BoundMiB
	res.LimitChosen = "?"
	if b, err := os.ReadFile(ch.log.Name()); err == nil {
		if m := limitRE.FindSubmatch(b); m != nil {
			res.LimitChosen = string(m[1])
		} else if bytes.Contains(b, []byte("GOMEMLIMIT is set")) {
			res.LimitChosen = "GOMEMLIMIT"
		} else {
			res.LimitChosen = "none"
		}
	}
	return res
}

// scrapeAll reads the figures the memory table needs from /metrics:
// records processed or dead-lettered ("records"), the Go heap in use and
// the bytes buffered.
func scrapeAll(hc *http.Client, url string) (map[string]float64, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.LastIndexByte(line, ' ')
		if i < 0 || bytes.HasPrefix(line, []byte("#")) {
			continue
		}
		v, err := strconv.ParseFloat(string(line[i+1:]), 64)
		if err != nil {
			continue
		}
		switch {
		case bytes.HasPrefix(line, []byte("consumer_records_total{")):
			if bytes.Contains(line, []byte(`outcome="processed"`)) || bytes.Contains(line, []byte(`outcome="dead_lettered"`)) {
				m["records"] += v
			}
		case bytes.HasPrefix(line, []byte("go_memstats_heap_inuse_bytes ")):
			m["go_memstats_heap_inuse_bytes"] = v
		case bytes.HasPrefix(line, []byte("consumer_buffered_bytes ")):
			m["consumer_buffered_bytes"] = v
		}
	}
	return m, sc.Err()
}

// memoryMarkdown is the memory table of docs/BENCHMARKS.md.
func memoryMarkdown() string {
	if len(out.Memory) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nMemory (peak RSS against the bound 3 × MAX_BUFFERED_BYTES + 48 MiB): %d records per case, %d partitions, preloaded; slow handler = HTTP sink taking %s per batch; 1 KB JSON values repeat a template but for a few numbers.\n\n",
		*memRecords, *partitions, *memSlow)
	b.WriteString("| case | ratio | MAX_BUFFERED_BYTES | GOMEMLIMIT → Go limit | records/s | peak buffered MiB | peak heap MiB | peak RSS MiB | bound MiB | holds |\n")
	b.WriteString("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range out.Memory {
		holds := "yes"
		if !r.Pass {
			holds = "**no**"
			if r.Err != "" {
				holds += " (" + r.Err + ")"
			}
		}
		lim := r.GoMemLimit
		if lim == "default" {
			lim = "unset"
		}
		fmt.Fprintf(&b, "| %s | %.1f | %d MiB | %s → %s | %.0f | %.1f | %.1f | %.0f | %.0f | %s |\n",
			r.Case, r.Ratio, r.BudgetMiB, lim, r.LimitChosen, r.Rate, r.PeakBufferMiB, r.PeakHeapMiB, r.PeakRSSMiB, r.BoundMiB, holds)
	}
	return b.String()
}

// memoryOnly runs the memory table alone and writes its results.
func memoryOnly(ctx context.Context, adm *kadm.Client) error {
	if err := runMemory(ctx, adm); err != nil {
		return err
	}
	out.LoadEnd = loadavg()
	writeOut()
	md := fmt.Sprintf("Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s, at end %s  \nBroker: %s\n",
		out.Command, out.Machine, out.Date, out.Load, out.LoadEnd, out.Broker) + memoryMarkdown()
	fmt.Println(md)
	return os.WriteFile(*outMD, []byte(md), 0o644)
}
