package consume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// The names of the kfake tests' topics and group (the auth tests use them
// directly). On a real broker every pipeline test gets names of its own.
const (
	topic    = "orders"
	dlqTopic = "orders.dlq"
	group    = "orders-test"
)

// cluster is where a pipeline test runs: an in-process kfake cluster, or the
// real Apache Kafka named by KAFKA_TEST_BROKERS (see scripts/kafka and make
// test-kafka). The same tests run on both.
type cluster struct {
	addrs             []string
	topic, dlq, group string
	kf                *kfake.Cluster // nil on a real broker
	adm               *kadm.Client   // on a real broker
}

// startCluster starts a broker (or uses the real one) with the source topic
// (parts partitions) and its dead-letter topic.
func startCluster(t *testing.T, parts int32) *cluster {
	return startClusterWith(t, parts, true)
}

func startClusterWith(t *testing.T, parts int32, withDLQ bool) *cluster {
	t.Helper()
	if seeds := os.Getenv("KAFKA_TEST_BROKERS"); seeds != "" {
		return realCluster(t, strings.Split(seeds, ","), parts, withDLQ)
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(parts, topic)}
	if withDLQ {
		opts = append(opts, kfake.SeedTopics(2, dlqTopic))
	}
	kf, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	return &cluster{addrs: kf.ListenAddrs(), topic: topic, dlq: dlqTopic, group: group, kf: kf}
}

// realCluster creates topics named after the test on the real broker and
// deletes them (and the group) when the test ends.
func realCluster(t *testing.T, seeds []string, parts int32, withDLQ bool) *cluster {
	t.Helper()
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{addrs: seeds, topic: name, dlq: name + ".dlq", group: name, adm: kadm.NewClient(cl)}
	if consumerProtocol() && !serves848(t, c) {
		// franz-go falls back to the classic protocol on such a broker: a
		// KIP-848 tier that passed there would claim coverage it lacks.
		t.Fatal("KAFKA_TEST_GROUP_PROTOCOL=consumer, but the broker does not serve KIP-848 (ConsumerGroupHeartbeat v1, Kafka 4.0+)")
	}
	ctx := context.Background()
	create := func(topic string, n int32) {
		if _, err := c.adm.CreateTopic(ctx, n, 1, nil, topic); err != nil {
			t.Fatalf("creating %s: %v", topic, err)
		}
	}
	create(c.topic, parts)
	want := []string{c.topic}
	if withDLQ {
		create(c.dlq, 2)
		want = append(want, c.dlq)
	}
	// Creation is asynchronous: wait until the broker's metadata has them.
	waitFor(t, 10*time.Second, "the topics to appear in metadata", func() bool {
		td, err := c.adm.ListTopics(ctx, want...)
		if err != nil {
			return false
		}
		for _, name := range want {
			if d, ok := td[name]; !ok || d.Err != nil || len(d.Partitions) == 0 {
				return false
			}
		}
		return true
	})
	t.Cleanup(func() {
		_, _ = c.adm.DeleteGroup(ctx, c.group)
		_, _ = c.adm.DeleteTopics(ctx, c.topic, c.dlq)
		cl.Close()
	})
	return c
}

// breakDLQ makes writes to the dead-letter topic fail until the returned
// function is called: a kfake fault, or on a real broker a max.message.bytes
// smaller than any dead-letter record (MESSAGE_TOO_LARGE). On Kafka 4
// min.insync.replicas above a single replica does not stop acks=all writes,
// so it cannot serve here.
func (c *cluster) breakDLQ(t *testing.T) (repair func()) {
	t.Helper()
	if c.kf != nil {
		f := c.kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: c.dlq, Err: kerr.NotEnoughReplicas, Count: -1})
		return func() { f.Remove() }
	}
	set := func(v *string) {
		op := kadm.SetConfig
		if v == nil {
			op = kadm.DeleteConfig
		}
		resp, err := c.adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: op, Name: "max.message.bytes", Value: v}}, c.dlq)
		if err == nil {
			err = resp[0].Err
		}
		if err != nil {
			t.Fatalf("max.message.bytes on %s: %v", c.dlq, err)
		}
	}
	tiny := "64"
	set(&tiny)
	// The broker applies a topic's new config a moment after it answered.
	time.Sleep(3 * time.Second)
	return func() { set(nil) }
}

// holdDLQ keeps kfake from answering writes to the dead-letter topic until
// the returned function is called: a topic that is healthy but slow. It
// returns as well a channel closed when the first write arrived.
func (c *cluster) holdDLQ(t *testing.T) (arrived <-chan struct{}, release func()) {
	t.Helper()
	if c.kf == nil {
		t.Skip("holds requests with kfake")
	}
	id := c.kf.TopicInfo(c.dlq).TopicID // Produce v13 names topics by ID
	seen, free := make(chan struct{}), make(chan struct{})
	var once, freeOnce sync.Once
	c.kf.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.kf.KeepControl()
		for _, tp := range r.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == c.dlq || tp.TopicID == id {
				once.Do(func() { close(seen) })
				c.kf.SleepControl(func() { <-free })
				break
			}
		}
		return nil, nil, false
	})
	release = func() { freeOnce.Do(func() { close(free) }) }
	t.Cleanup(release)
	return seen, release
}

// overlapFor sets how long a dead-letter write may be in flight while its
// partition goes on, for one test.
func overlapFor(t *testing.T, d time.Duration) {
	was := deadLetterOverlap
	deadLetterOverlap = d
	t.Cleanup(func() { deadLetterOverlap = was })
}

// waitStable waits until the group has members members and is stable.
func (c *cluster) waitStable(t *testing.T, members int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c.kf != nil {
		if _, err := c.kf.WaitGroupStable(ctx, c.group, members); err != nil {
			t.Fatalf("group with %d members not stable: %v", members, err)
		}
		return
	}
	last := "nothing yet"
	for {
		if consumerProtocol() {
			// A KIP-848 group: DescribeGroups sees only classic ones.
			gs, err := c.adm.DescribeConsumerGroups(ctx, c.group)
			if g, ok := gs[c.group]; err == nil && ok && g.Err == nil {
				if g.State == "Stable" && len(g.Members) == members {
					return
				}
				last = fmt.Sprintf("state %s with %d members", g.State, len(g.Members))
			}
			if ctx.Err() != nil {
				t.Fatalf("group with %d members not stable; last seen: %s", members, last)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		gs, err := c.adm.DescribeGroups(ctx, c.group)
		if err == nil {
			if g, ok := gs[c.group]; ok && g.Err == nil {
				if g.State == "Stable" && len(g.Members) == members {
					return
				}
				last = fmt.Sprintf("state %s with %d members", g.State, len(g.Members))
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("group with %d members not stable; last seen: %s", members, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// instanceIDs returns the static membership ids of the group's members.
func (c *cluster) instanceIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	if c.kf != nil {
		if info := c.kf.GroupInfo(c.group); info != nil {
			for _, m := range info.Members {
				if m.InstanceID != nil {
					ids = append(ids, *m.InstanceID)
				}
			}
		}
		return ids
	}
	if consumerProtocol() {
		gs, err := c.adm.DescribeConsumerGroups(context.Background(), c.group)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range gs[c.group].Members {
			if m.InstanceID != nil {
				ids = append(ids, *m.InstanceID)
			}
		}
		return ids
	}
	gs, err := c.adm.DescribeGroups(context.Background(), c.group)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range gs[c.group].Members {
		if m.InstanceID != nil {
			ids = append(ids, *m.InstanceID)
		}
	}
	return ids
}

func newClient(t testing.TB, c *cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produced is what a test wrote, by partition, in offset order.
type produced map[int32][]*kgo.Record

func (p produced) total() int {
	n := 0
	for _, rs := range p {
		n += len(rs)
	}
	return n
}

// produce writes n JSON records {"n":i} keyed "k<i>" with a header, spread
// over the partitions; value overrides the value of record i when it
// returns non-nil.
func produce(t *testing.T, c *cluster, cl *kgo.Client, n int, value func(i int) []byte) produced {
	t.Helper()
	out := produced{}
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		v := fmt.Appendf(nil, `{"n":%d}`, i)
		if value != nil {
			if o := value(i); o != nil {
				v = o
			}
		}
		recs = append(recs, &kgo.Record{
			Topic:   c.topic,
			Key:     fmt.Appendf(nil, "k%d", i),
			Value:   v,
			Headers: []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "t-%d", i)}},
		})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	return out
}

// delivery is one record as a handler saw it.
type delivery struct {
	member    string
	partition int32
	offset    int64
	key       string
	value     string
	attempt   int
}

// recorder is a handler that records every delivery and answers as fail
// says (nil: success).
type recorder struct {
	name string
	mu   *sync.Mutex
	log  *[]delivery
	// seen counts handler calls per partition and offset.
	seen map[[2]int64]int
	fail func(b handler.Batch, attempts map[int64]int) error
	slow time.Duration
}

type sharedLog struct {
	mu  sync.Mutex
	log []delivery
}

func (s *sharedLog) recorder(name string) *recorder {
	return &recorder{name: name, mu: &s.mu, log: &s.log, seen: map[[2]int64]int{}}
}

func (s *sharedLog) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]delivery(nil), s.log...)
}

func (r *recorder) Handle(ctx context.Context, b handler.Batch) error {
	if r.slow > 0 {
		select {
		case <-time.After(r.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	attempts := map[int64]int{}
	for _, rec := range b.Records {
		k := [2]int64{int64(rec.Raw.Partition), rec.Raw.Offset}
		r.seen[k]++
		attempts[rec.Raw.Offset] = r.seen[k]
	}
	var err error
	if r.fail != nil {
		err = r.fail(b, attempts)
	}
	for _, rec := range b.Records {
		*r.log = append(*r.log, delivery{
			member: r.name, partition: rec.Raw.Partition, offset: rec.Raw.Offset,
			key: string(rec.Key), value: string(rec.Value), attempt: attempts[rec.Raw.Offset],
		})
	}
	r.mu.Unlock()
	return err
}

// testConfig is a valid configuration for a kfake cluster seeded with the
// constant names, with short timings.
func testConfig(t *testing.T, c *kfake.Cluster, set map[string]string) config.Config {
	t.Helper()
	return baseConfig(t, c.ListenAddrs(), topic, group, set)
}

// config is a valid configuration for the test's cluster, with short timings.
func (c *cluster) config(t *testing.T, set map[string]string) config.Config {
	t.Helper()
	return baseConfig(t, c.addrs, c.topic, c.group, set)
}

// consumerProtocol reports whether the suite runs with
// KAFKA_TEST_GROUP_PROTOCOL=consumer (KIP-848 groups).
func consumerProtocol() bool { return os.Getenv("KAFKA_TEST_GROUP_PROTOCOL") == "consumer" }

func baseConfig(t testing.TB, addrs []string, topic, group string, set map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"KAFKA_BROKERS":             strings.Join(addrs, ","),
		"KAFKA_TOPICS":              topic,
		"KAFKA_GROUP_ID":            group,
		"KAFKA_AUTH":                "none",
		"KAFKA_SESSION_TIMEOUT":     "10s",
		"KAFKA_HEARTBEAT_INTERVAL":  "200ms",
		"KAFKA_REBALANCE_TIMEOUT":   "10s",
		"KAFKA_COMMIT_INTERVAL":     "200ms",
		"BATCH_MAX_RECORDS":         "50",
		"BATCH_MAX_WAIT":            "50ms",
		"HANDLER_RETRY_BACKOFF":     "10ms",
		"HANDLER_RETRY_BACKOFF_MAX": "50ms",
		"SHUTDOWN_TIMEOUT":          "10s",
		"VALUE_FORMAT":              "json",
		"KEY_FORMAT":                "string",
		"HANDLER":                   "discard",
		"METRICS_ADDR":              "127.0.0.1:0",
	}
	// KAFKA_TEST_GROUP_PROTOCOL=consumer runs the suite with KIP-848 (make
	// test-kafka-848); a test's own setting wins.
	if p := os.Getenv("KAFKA_TEST_GROUP_PROTOCOL"); p != "" {
		env["KAFKA_GROUP_PROTOCOL"] = p
	}
	for k, v := range set {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// member is one running consumer.
type member struct {
	c       *Consumer
	health  *health.Health
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
}

// start runs a consumer with h until the test ends or stop/crash is called.
func start(t testing.TB, cfg config.Config, h handler.Handler, opts ...kgo.Opt) *member {
	t.Helper()
	return startWithMetrics(t, cfg, h, func(*metrics.Metrics) []kgo.Opt { return opts })
}

// startWithMetrics is start with client options that need the member's
// metrics.
func startWithMetrics(t testing.TB, cfg config.Config, h handler.Handler, opts func(*metrics.Metrics) []kgo.Opt) *member {
	t.Helper()
	key, value, err := codec.NewKeyValue(context.Background(), cfg, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hl := health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now)
	c, err := New(cfg, Deps{
		Key: key, Value: value, Handler: h,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Metrics: m, Health: hl, Opts: opts(m),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{c: c, health: hl, metrics: m, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { mb.done <- c.Run(ctx) }()
	t.Cleanup(func() { mb.stop(t) })
	return mb
}

// stop shuts the member down as SIGTERM does and returns Run's error.
func (m *member) stop(t testing.TB) error {
	t.Helper()
	m.cancel()
	select {
	case err, ok := <-m.done:
		if ok {
			close(m.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop within 30s")
		return nil
	}
}

// crash stops the member as a killed process would: no more commits.
func (m *member) crash(t *testing.T) {
	t.Helper()
	m.c.crash()
	_ = m.stop(t)
}

// crash stops the consumer the way a killed process would, as far as the
// group can tell: in-flight work is abandoned and nothing more is committed.
func (c *Consumer) crash() {
	c.noCommit.Store(true)
	c.abortAll()
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// committed returns the group's committed offsets by partition.
func committed(t *testing.T, c *cluster, cl *kgo.Client) map[int32]int64 {
	t.Helper()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), c.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{} // nothing committed yet
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == c.topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// readDLQ returns every record of the dead-letter topic, waiting until
// there are want of them.
func readDLQ(t *testing.T, c *cluster, want int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, c, kgo.ConsumeTopics(c.dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("dead-letter topic: got %d records, want %d", len(out), want)
		}
		out = append(out, fs.Records()...)
	}
	// Nothing more should arrive.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if extra := cl.PollFetches(short).Records(); len(extra) > 0 {
		t.Fatalf("dead-letter topic: got %d more records than the %d wanted", len(extra), want)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

// firstDeliveries returns, per partition, the offsets in the order they were
// first delivered, and the number of duplicate deliveries.
func firstDeliveries(log []delivery) (map[int32][]int64, int) {
	seen := map[[2]int64]bool{}
	order := map[int32][]int64{}
	dups := 0
	for _, d := range log {
		k := [2]int64{int64(d.partition), d.offset}
		if seen[k] {
			dups++
			continue
		}
		seen[k] = true
		order[d.partition] = append(order[d.partition], d.offset)
	}
	return order, dups
}

// checkAllDelivered asserts every produced record was delivered with its
// decoded key and value, in offset order within each partition on first
// delivery, except the offsets in skip.
func checkAllDelivered(t *testing.T, p produced, log []delivery, skip map[int32]map[int64]bool) {
	t.Helper()
	byOffset := map[[2]int64]delivery{}
	for _, d := range log {
		byOffset[[2]int64{int64(d.partition), d.offset}] = d
	}
	order, _ := firstDeliveries(log)
	for part, recs := range p {
		var want []int64
		for _, r := range recs {
			if skip[part][r.Offset] {
				continue
			}
			want = append(want, r.Offset)
			d, ok := byOffset[[2]int64{int64(part), r.Offset}]
			if !ok {
				t.Fatalf("partition %d offset %d: never delivered", part, r.Offset)
			}
			if wantKey := `"` + string(r.Key) + `"`; d.key != wantKey {
				t.Fatalf("partition %d offset %d: key got %s, want %s", part, r.Offset, d.key, wantKey)
			}
			if d.value != string(r.Value) {
				t.Fatalf("partition %d offset %d: value got %s, want %s", part, r.Offset, d.value, r.Value)
			}
		}
		got := order[part]
		if len(got) != len(want) {
			t.Fatalf("partition %d: got %d distinct deliveries, want %d", part, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("partition %d: first deliveries out of order at %d: got offset %d, want %d", part, i, got[i], want[i])
			}
		}
	}
}

// checkCommittedAtEnd asserts the group committed the end of every partition.
func checkCommittedAtEnd(t *testing.T, c *cluster, cl *kgo.Client, p produced) {
	t.Helper()
	checkCommittedAtEndWithin(t, c, cl, p, 30*time.Second)
}

// checkCommittedAtEndWithin is checkCommittedAtEnd for a test that is slow
// by design (a tiny buffer: many small fetches), so that a loaded machine
// does not fail it.
func checkCommittedAtEndWithin(t *testing.T, c *cluster, cl *kgo.Client, p produced, d time.Duration) {
	t.Helper()
	waitFor(t, d, "commits at the end of every partition", func() bool {
		got := committed(t, c, cl)
		for part, recs := range p {
			if got[part] != recs[len(recs)-1].Offset+1 {
				return false
			}
		}
		return true
	})
}

// getReady asks a health handler for /readyz.
func getReady(t *testing.T, h *health.Health) int {
	t.Helper()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
