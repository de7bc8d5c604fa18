package main

// The share-group section (docs/BENCHMARKS.md, "Share groups"; issue 25):
// bin/consumer as 1, 3, 6 and 12 members of a share group against the same
// members in a consumer group, on a topic of 3 partitions, with a handler
// that takes 20 ms per batch (the HTTP sink) and one batch in flight per
// member (MAX_IN_FLIGHT_BATCHES=1). A consumer group cannot use more
// members than partitions; a share group can.

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	shareRecords    = flag.Int("share-records", 96_000, "records per share-group section run")
	shareMembersF   = flag.String("share-members", "1,3,6,12", "members per share-group section run")
	shareBatch      = flag.Int("share-batch", 50, "BATCH_MAX_RECORDS of the share-group section")
	shareSinkDelay  = flag.Duration("share-sink-delay", 20*time.Millisecond, "the HTTP sink's time per request (per batch) in the share-group section")
	shareProduceMax = flag.Int("share-produce-batch", 16<<10, "producer batch bytes of the share-group section's preload (16 KiB: the Java producer's batch.size)")
)

const sharePartitions = 3

// ShareResult is one run of the share-group section.
type ShareResult struct {
	Group   string  `json:"group"` // "share" or "consumer"
	Members int     `json:"members"`
	Records int     `json:"records"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	CPU     float64 `json:"cpu_seconds"` // the members' user+system CPU, summed over the whole run
	// AllActive is the seconds from starting the members until every
	// member that can take part (a consumer group: one per partition) had
	// finished a record.
	AllActive float64 `json:"all_active_seconds"`
	Err       string  `json:"err,omitempty"`
}

var shareResults []ShareResult

// preloadShare writes n small JSON records, keyed, to a new topic of three
// partitions (and its dead-letter topic), in producer batches of at most
// -share-produce-batch bytes: a share fetch returns whole batches around
// the records it acquires, so batches far larger than a poll's records
// make every fetch decode records it does not hand out.
func preloadShare(ctx context.Context, adm *kadm.Client, topic string, n int) error {
	for _, t := range []string{topic, topic + ".dlq"} {
		if _, err := adm.CreateTopic(ctx, sharePartitions, 1, nil, t); err != nil {
			return fmt.Errorf("creating %s: %w", t, err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ProducerBatchMaxBytes(int32(*shareProduceMax)))
	if err != nil {
		return err
	}
	defer cl.Close()
	const chunk = 5000
	for i := 0; i < n; i += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			v := fmt.Appendf(nil, `{"id":%d,"name":"product %d","price":%d.99,"tags":["a","b"]}`, j, j, j%1000)
			recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", j), Value: v})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// shareRun starts members bin/consumer processes in one group of type gt
// on topic (n records preloaded) and returns the rate from the first scrape
// at which the members together count 10% of the records and every member
// that can take part has finished one, to the first at 90%: the members'
// joins (and a consumer group's rebalances) before, and the last partial
// batches after, are not the throughput under test (AllActive says how
// long the joins took). Completion still waits for all n.
func shareRun(topic string, n int, gt string, members int, sinkURL string) ShareResult {
	r := ShareResult{Group: gt, Members: members, Records: n}
	grp := group("share-" + gt)
	type m struct {
		c   *child
		url string
	}
	var ms []m
	stop := func() {
		for _, x := range ms {
			_ = x.c.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, x := range ms {
			var cr Result
			if err := x.c.wait(&cr); err != nil && r.Err == "" {
				r.Err = "exit: " + err.Error()
			}
			r.CPU += cr.CPU
		}
	}
	for i := range members {
		port := freePort()
		env := []string{
			"KAFKA_BROKERS=" + *brokers, "KAFKA_TOPICS=" + topic, "KAFKA_GROUP_ID=" + grp,
			"KAFKA_GROUP_TYPE=" + gt, "KAFKA_START_OFFSET=earliest",
			"KAFKA_AUTH=none", "VALUE_FORMAT=json", "KEY_FORMAT=string",
			"HANDLER=http", "HTTP_HANDLER_URL=" + sinkURL,
			"BATCH_MAX_RECORDS=" + strconv.Itoa(*shareBatch), "BATCH_MAX_WAIT=100ms", "MAX_IN_FLIGHT_BATCHES=1",
			"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(port), "SHUTDOWN_TIMEOUT=10s", "LOG_LEVEL=warn",
		}
		if gt == "share" {
			env = append(env, "PROCESSING_ORDER=none", "PARTITION_CONCURRENCY=1")
		} else {
			env = append(env, "PROCESSING_ORDER=partition")
		}
		c, err := startChild(fmt.Sprintf("%s-%d-of-%d", gt, i+1, members), env, nil, *consumer)
		if err != nil {
			r.Err = err.Error()
			stop()
			return r
		}
		ms = append(ms, m{c, fmt.Sprintf("http://127.0.0.1:%d/metrics", port)})
	}
	lo, hi := int64(n)/10, int64(n)*9/10
	// Members that take part: all of a share group's, at most one per
	// partition of a consumer group's.
	need := members
	if gt == "consumer" {
		need = min(members, sharePartitions)
	}
	var (
		t0, t1 time.Time
		c0, c1 int64
	)
	begin := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := begin.Add(8 * time.Minute)
	for {
		time.Sleep(100 * time.Millisecond) // every member's /metrics each time: scraping more often takes the cores the members need
		if time.Now().After(deadline) {
			r.Err = "did not finish"
			break
		}
		var total int64
		active := 0
		for _, x := range ms {
			cnt, _ := scrape(hc, x.url) // a member not listening yet counts 0
			total += cnt
			if cnt > 0 {
				active++
			}
		}
		now := time.Now()
		if active >= need && r.AllActive == 0 {
			r.AllActive = now.Sub(begin).Seconds()
		}
		if total >= lo && active >= need && t0.IsZero() {
			t0, c0 = now, total
		}
		if total >= hi && t1.IsZero() {
			t1, c1 = now, total
			if t0.IsZero() {
				r.Err = fmt.Sprintf("only %d of %d members had finished a record at 90%%", active, need)
			}
		}
		if total >= int64(n) {
			break
		}
	}
	stop()
	if r.Err == "" && t1.After(t0) {
		r.Seconds = t1.Sub(t0).Seconds()
		r.Rate = float64(c1-c0) / r.Seconds
	}
	return r
}

// runShare runs the section: for each member count, a share group and a
// consumer group, each on its own preloaded topic.
func runShare(ctx context.Context, adm *kadm.Client) error {
	var counts []int
	for _, s := range strings.Split(*shareMembersF, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return fmt.Errorf("-share-members: %q", s)
		}
		counts = append(counts, k)
	}
	sink := newSlowSink(*shareSinkDelay)
	defer sink.Close()
	for _, gt := range []string{"consumer", "share"} {
		for _, k := range counts {
			topic := prefix + "-share-" + strconv.Itoa(int(seq.Add(1)))
			if err := preloadShare(ctx, adm, topic, *shareRecords); err != nil {
				return err
			}
			logf("share section: %s group, %d members, %d records (load %s)", gt, k, *shareRecords, loadavg())
			r := shareRun(topic, *shareRecords, gt, k, sink.url)
			logf("  %.0f records/s %s", r.Rate, r.Err)
			shareResults = append(shareResults, r)
			_, _ = adm.DeleteTopics(ctx, topic, topic+".dlq")
		}
	}
	return nil
}

func shareRate(gt string, members int) float64 {
	for _, r := range shareResults {
		if r.Group == gt && r.Members == members && r.Err == "" {
			return r.Rate
		}
	}
	return 0
}

func shareMarkdown() string {
	var b strings.Builder
	b.WriteString("\n### Share groups\n\n")
	fmt.Fprintf(&b, "bin/consumer as N members, a share group (`PROCESSING_ORDER=none`) against a consumer group (`partition`), %d partitions, %d JSON records preloaded in producer batches of at most %d bytes, `HANDLER=http` to a sink taking %s per batch, `BATCH_MAX_RECORDS=%d`, `MAX_IN_FLIGHT_BATCHES=1` (one batch in flight per member). Rate from 10%% of the records finished, once every member that can take part (a consumer group: one per partition) has finished one, to 90%%, summed over the members' `/metrics`; \"all active\": seconds from starting the members until then. Ideal: members × %d / %s (a consumer group: at most %d members busy).\n\n",
		sharePartitions, *shareRecords, *shareProduceMax, *shareSinkDelay, *shareBatch, *shareBatch, *shareSinkDelay, sharePartitions)
	best := 0.0
	for _, r := range shareResults {
		if r.Group == "consumer" && r.Err == "" {
			best = max(best, r.Rate)
		}
	}
	ideal := float64(*shareBatch) / shareSinkDelay.Seconds()
	b.WriteString("| members | share group | × ideal | consumer group | × ideal | share vs consumer group's best | CPU ms per 1,000 records (share / consumer) | all active, s (share / consumer) |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	active := func(gt string, k int) string {
		for _, r := range shareResults {
			if r.Group == gt && r.Members == k && r.AllActive > 0 {
				return fmt.Sprintf("%.1f", r.AllActive)
			}
		}
		return "n/a"
	}
	cpu := func(gt string, k int) string {
		for _, r := range shareResults {
			if r.Group == gt && r.Members == k && r.Err == "" && r.Records > 0 {
				return fmt.Sprintf("%.0f", r.CPU*1e6/float64(r.Records))
			}
		}
		return "n/a"
	}
	cell := func(gt string, k int) (string, string) {
		for _, r := range shareResults {
			if r.Group == gt && r.Members == k {
				if r.Err != "" {
					return "error: " + r.Err, ""
				}
				busy := k
				if gt == "consumer" {
					busy = min(k, sharePartitions)
				}
				return fmt.Sprintf("%.0f", r.Rate), ratio(r.Rate, ideal*float64(busy))
			}
		}
		return "not run", ""
	}
	var counts []int
	for _, r := range shareResults {
		if r.Group == "share" {
			counts = append(counts, r.Members)
		}
	}
	for _, k := range counts {
		s, si := cell("share", k)
		c, ci := cell("consumer", k)
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n", k, s, si, c, ci, ratio(shareRate("share", k), best),
			cpu("share", k), cpu("consumer", k), active("share", k), active("consumer", k))
	}
	if len(counts) > 0 && best > 0 {
		top := counts[len(counts)-1]
		got := shareRate("share", top) / best
		fmt.Fprintf(&b, "\n| goal | measured | met |\n| --- | ---: | --- |\n| %d members ≥ 3× the consumer group's best | %.2f× | %v |\n", top, got, got >= 3)
	}
	return b.String()
}

// shareOnly runs the share-group section alone and writes its results.
func shareOnly(ctx context.Context, adm *kadm.Client) error {
	if err := runShare(ctx, adm); err != nil {
		return err
	}
	out.LoadEnd = loadavg()
	out.Share = shareResults
	writeOut()
	md := fmt.Sprintf("Command: `%s`  \nMachine: %s  \nDate: %s; load average at start %s, at end %s  \nBroker: %s\n",
		out.Command, out.Machine, out.Date, out.Load, out.LoadEnd, out.Broker) + shareMarkdown()
	fmt.Println(md)
	return os.WriteFile(*outMD, []byte(md), 0o644)
}
