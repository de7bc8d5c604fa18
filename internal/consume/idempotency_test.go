package consume

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/codec"
	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/ops"
)

// idemGuard is a guard over mem keyed by the message-id header, as
// IDEMPOTENCY_KEY=header:message-id builds it.
func idemGuard(c *cluster, mem *idempotency.Memory, inProgress time.Duration) *idempotency.Guard {
	return idempotency.New("memory", mem, idempotency.Config{
		Prefix: c.group, Header: "message-id", TTL: time.Hour, InProgressTTL: inProgress,
	}, idempotency.Metrics{})
}

// startIdem is start with an idempotency store.
func startIdem(t *testing.T, cfg config.Config, h handler.Handler, g *idempotency.Guard) *member {
	t.Helper()
	key, value, err := codec.NewKeyValue(context.Background(), cfg, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	hl := health.New(cfg.Ops.UnreadyAfter, time.Minute, time.Now)
	c, err := New(cfg, Deps{
		Key: key, Value: value, Handler: h, Idempotency: g,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Metrics: m, Health: hl,
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

// produceIDs writes one record per id to partition part, with the id as
// its message-id header, and returns them.
func produceIDs(t *testing.T, c *cluster, cl *kgo.Client, part int32, ids ...string) []*kgo.Record {
	t.Helper()
	var rs []*kgo.Record
	for _, id := range ids {
		rs = append(rs, &kgo.Record{Topic: c.topic, Partition: part, Key: []byte(id), Value: fmt.Appendf(nil, `{"id":%q}`, id),
			Headers: []kgo.RecordHeader{{Key: "message-id", Value: []byte(id)}}})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestIdempotencyRedriveThroughStore: with IDEMPOTENCY_KEY=header:NAME, a
// record that was dead-lettered is handed to the handler when `consumer
// redrive` sends it back with the same header, and the commit passes it;
// a record that was handled is not handled again.
func TestIdempotencyRedriveThroughStore(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var mu sync.Mutex
	var broken = true
	seen := map[string]int{} // successful deliveries by id
	redriven := map[string]string{}
	h := handlerFunc(func(_ context.Context, b handler.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		var failed []int64
		for _, r := range b.Records {
			id := header(r.Raw, "message-id")
			if broken && id == "m-1" {
				failed = append(failed, r.Raw.Offset)
				continue
			}
			seen[id]++
			if n := header(r.Raw, ops.HeaderRedriveCount); n != "" {
				redriven[id] = n
			}
		}
		if len(failed) > 0 {
			return &handler.ItemFailures{Offsets: failed, Err: fmt.Errorf("downstream rejects %v", failed)}
		}
		return nil
	})
	mem := idempotency.NewMemory(nil)
	cfg := c.config(t, map[string]string{"HANDLER_MAX_ATTEMPTS": "2"})
	startIdem(t, cfg, h, idemGuard(c, mem, 10*time.Second))
	produceIDs(t, c, cl, 0, "m-0", "m-1", "m-2")
	if dl := readDLQ(t, c, 1); header(dl[0], "message-id") != "m-1" {
		t.Fatalf("dead-lettered %q, want m-1", header(dl[0], "message-id"))
	}
	waitFor(t, 20*time.Second, "the commit past the dead-lettered record", func() bool { return committed(t, c, cl)[0] == 3 })

	mu.Lock()
	broken = false
	mu.Unlock()
	sum, err := ops.Redrive{From: c.dlq, Group: c.group, MaxRedrives: ops.DefaultMaxRedrives, ProgressGroup: c.group + ".redrive"}.
		Run(context.Background(), ops.RedriveDeps{Opts: []kgo.Opt{kgo.SeedBrokers(c.addrs...)}})
	if err != nil || sum.Sent != 1 {
		t.Fatalf("redrive: got %v, %v; want 1 sent", sum, err)
	}
	waitFor(t, 20*time.Second, "the redriven record handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["m-1"] == 1
	})
	waitFor(t, 20*time.Second, "the commit past the redriven record", func() bool { return committed(t, c, cl)[0] == 4 })
	// The same message produced again, now that it was handled: a
	// duplicate, skipped and committed.
	produceIDs(t, c, cl, 0, "m-1")
	waitFor(t, 20*time.Second, "the commit past the copy", func() bool { return committed(t, c, cl)[0] == 5 })
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"m-0": 1, "m-1": 1, "m-2": 1}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("handled %v, want %v", seen, want)
	}
	if redriven["m-1"] != "1" {
		t.Errorf("m-1 handled with dlq.redrive.count %q, want 1 (the redriven copy)", redriven["m-1"])
	}
	if !mem.Completed(c.group + ":" + c.topic + ":h:m-1") {
		t.Error("m-1 not completed in the store after its copy was handled")
	}
}

// TestIdempotencyBusyWaitsKeepSlotsFree: batches waiting for records that
// another member holds in the store (Busy) give their in-flight slots back,
// so that with as many of them as MAX_IN_FLIGHT_BATCHES the partitions
// that wait on nothing are still handled; the waiting partitions go on, in
// order, once the other member completes the records.
func TestIdempotencyBusyWaitsKeepSlotsFree(t *testing.T) {
	c := startCluster(t, 4)
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var mu sync.Mutex
	var handled []string
	h := handlerFunc(func(_ context.Context, b handler.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Records {
			handled = append(handled, header(r.Raw, "message-id"))
		}
		return nil
	})
	mem := idempotency.NewMemory(nil)
	g := idemGuard(c, mem, 10*time.Second)
	// Another member holds held-0 and held-1 (a revoked partition's batch
	// it still handles, a dead-letter write in an outage).
	og := idemGuard(c, mem, time.Hour)
	other := og.Owner()
	heldKeys := []string{c.group + ":" + c.topic + ":h:held-0", c.group + ":" + c.topic + ":h:held-1"}
	if err := og.Claim(context.Background(), heldKeys, nil, other, make([]idempotency.Verdict, 2)); err != nil {
		t.Fatal(err)
	}

	cfg := c.config(t, map[string]string{"MAX_IN_FLIGHT_BATCHES": "2"})
	m := startIdem(t, cfg, h, g)
	produceIDs(t, c, cl, 0, "held-0", "after-0")
	produceIDs(t, c, cl, 1, "held-1", "after-1")
	waits := m.metrics.IdempotencyWaits.WithLabelValues(c.topic)
	waitFor(t, 20*time.Second, "both batches waiting on the held records", func() bool { return testutil.ToFloat64(waits) >= 4 })
	produceIDs(t, c, cl, 2, "free-2")
	produceIDs(t, c, cl, 3, "free-3")
	waitFor(t, 20*time.Second, "the partitions that wait on nothing handled while two batches wait with two slots", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 2
	})
	mu.Lock()
	if got := strings.Join(handled, " "); got != "free-2 free-3" && got != "free-3 free-2" {
		t.Errorf("handled %s while the others wait, want free-2 and free-3", got)
	}
	mu.Unlock()
	waitFor(t, 20*time.Second, "commits of the free partitions", func() bool {
		got := committed(t, c, cl)
		return got[2] == 1 && got[3] == 1 && got[0] == 0 && got[1] == 0
	})

	// The other member handles held-0 and gives up held-1.
	if err := og.Complete(context.Background(), heldKeys[:1]); err != nil {
		t.Fatal(err)
	}
	if err := og.Release(context.Background(), heldKeys[1:], other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "commits at the end of every partition", func() bool {
		got := committed(t, c, cl)
		return got[0] == 2 && got[1] == 2 && got[2] == 1 && got[3] == 1
	})
	mu.Lock()
	defer mu.Unlock()
	pos := map[string]int{}
	for i, id := range handled {
		if _, ok := pos[id]; ok {
			t.Errorf("%s handled twice", id)
		}
		pos[id] = i
	}
	if _, ok := pos["held-0"]; ok {
		t.Error("held-0 handled, want it skipped: the other member completed it")
	}
	if _, ok := pos["held-1"]; !ok || pos["held-1"] > pos["after-1"] {
		t.Errorf("handled %v, want held-1 then after-1 (partition order)", handled)
	}
	if _, ok := pos["after-0"]; !ok {
		t.Errorf("handled %v, want after-0", handled)
	}
}

// handlerFunc is a handler.Handler from a function.
type handlerFunc func(context.Context, handler.Batch) error

func (f handlerFunc) Handle(ctx context.Context, b handler.Batch) error { return f(ctx, b) }

// TestLaneSlot: a batch's slot given back is taken again when one is free,
// and a batch whose partition is stopped while it waits for one is
// abandoned (errStopped), as a stopped partition starts no batch.
func TestLaneSlot(t *testing.T) {
	f, _, p := testFlow(1<<20, 1)
	p.flow, p.halt = f, make(chan struct{})
	ctx := context.Background()
	release, ok := f.acquire(ctx, p.halt)
	if !ok {
		t.Fatal("no slot")
	}
	s := &laneSlot{p: p, release: release}
	s.Yield()
	other, ok := f.acquire(ctx, p.halt) // the slot went to another batch
	if !ok {
		t.Fatal("the slot given back was not free")
	}
	taken := make(chan error, 1)
	go func() { taken <- s.Take(ctx) }()
	select {
	case err := <-taken:
		t.Fatalf("Take returned %v while the only slot is held", err)
	case <-time.After(50 * time.Millisecond):
	}
	other()
	if err := <-taken; err != nil {
		t.Fatalf("Take: %v", err)
	}
	s.Yield()
	other, _ = f.acquire(ctx, p.halt)
	defer other()
	go func() { taken <- s.Take(ctx) }()
	close(p.halt)
	if err := <-taken; err != errStopped {
		t.Errorf("Take after the partition stopped: got %v, want errStopped", err)
	}
}
