package consume

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
)

func TestTracker(t *testing.T) {
	var tr tracker
	recs := map[int64]*kgo.Record{}
	for _, off := range []int64{10, 11, 12, 13, 14, 20} { // gaps: compaction, transaction markers
		recs[off] = &kgo.Record{Offset: off, LeaderEpoch: 1}
		if off != 12 {
			tr.push(recs[off])
		}
	}
	steps := []struct {
		name    string
		off     int64
		wantOK  bool
		wantN   int
		wantEnd int64 // one past the prefix's last record, when wantN > 0
	}{
		{name: "out of order", off: 13, wantOK: true},
		{name: "again", off: 13},
		{name: "unknown", off: 12},
		{name: "first closes the gap", off: 10, wantOK: true, wantN: 1, wantEnd: 11},
		{name: "prefix passes a finished one", off: 11, wantOK: true, wantN: 2, wantEnd: 14},
		{name: "last before the first", off: 20, wantOK: true},
		{name: "rest", off: 14, wantOK: true, wantN: 2, wantEnd: 21},
		{name: "passed", off: 10},
	}
	for _, s := range steps {
		ok, n, last := tr.finish(recs[s.off])
		if ok != s.wantOK || n != s.wantN || (n > 0 && last.off+1 != s.wantEnd) {
			t.Fatalf("%s: finish(%d) got ok %v, n %d, end %d; want %v, %d, %d", s.name, s.off, ok, n, last.off+1, s.wantOK, s.wantN, s.wantEnd)
		}
	}
	if tr.len() != 0 {
		t.Fatalf("tracked after everything finished: got %d, want 0", tr.len())
	}
	// Memory follows what is tracked, not what passed through.
	for i := range int64(10000) {
		r := &kgo.Record{Offset: 100 + i}
		tr.push(r)
		tr.finish(r)
	}
	if c := cap(tr.ents); c > 64 {
		t.Fatalf("capacity after 10000 records finished in turn: got %d, want a handful", c)
	}
}

// produceKeyed writes n JSON records {"n":i} keyed "key-<i mod keys>",
// spread over the partitions by key.
func produceKeyed(t *testing.T, c *cluster, cl *kgo.Client, n, keys, from int) produced {
	t.Helper()
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: c.topic, Key: fmt.Appendf(nil, "key-%d", i%keys), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := produced{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	for _, rs := range out {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	return out
}

// checkKeyOrder asserts that every produced record was delivered, and that
// for every key the first deliveries are in offset order, record by record.
func checkKeyOrder(t *testing.T, p produced, log []delivery) {
	t.Helper()
	seen := map[[2]int64]bool{}
	byKey := map[string][]int64{} // partition/key -> offsets in first-delivery order
	for _, d := range log {
		k := [2]int64{int64(d.partition), d.offset}
		if seen[k] {
			continue
		}
		seen[k] = true
		pk := fmt.Sprintf("%d/%s", d.partition, d.key)
		byKey[pk] = append(byKey[pk], d.offset)
	}
	want := map[string][]int64{}
	for part, rs := range p {
		for _, r := range rs {
			if !seen[[2]int64{int64(part), r.Offset}] {
				t.Fatalf("partition %d offset %d: never delivered", part, r.Offset)
			}
			pk := fmt.Sprintf("%d/%q", part, r.Key)
			want[pk] = append(want[pk], r.Offset)
		}
	}
	for pk, offs := range want {
		got := byKey[pk]
		if len(got) != len(offs) {
			t.Fatalf("key %s: got %d distinct deliveries, want %d", pk, len(got), len(offs))
		}
		for i := range offs {
			if got[i] != offs[i] {
				t.Fatalf("key %s: first deliveries out of order at %d: got offset %d, want %d", pk, i, got[i], offs[i])
			}
		}
	}
}

// concurrency wraps a handler and records the most batches of one
// partition it was handling at once.
type concurrency struct {
	next handler.Handler
	mu   sync.Mutex
	now  map[int32]int
	most int
}

func (c *concurrency) Handle(ctx context.Context, b handler.Batch) error {
	c.mu.Lock()
	if c.now == nil {
		c.now = map[int32]int{}
	}
	c.now[b.Partition]++
	c.most = max(c.most, c.now[b.Partition])
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.now[b.Partition]--
		c.mu.Unlock()
	}()
	return c.next.Handle(ctx, b)
}

// TestKeyOrderAcrossRebalancesAndCrashes: with PROCESSING_ORDER=key and 16
// lanes, members join, one crashes, one leaves, while records flow; nothing
// is lost, and for every key the first deliveries are in offset order.
func TestKeyOrderAcrossRebalancesAndCrashes(t *testing.T) {
	c := startCluster(t, 4)
	cl := newClient(t, c)
	var log sharedLog
	cfg := c.config(t, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": "16", "MAX_IN_FLIGHT_BATCHES": "64",
		"BATCH_MAX_RECORDS": "10", "KAFKA_COMMIT_INTERVAL": "100ms",
	})
	var conc []*concurrency
	newMember := func(name string) *member {
		r := log.recorder(name)
		r.slow = 3 * time.Millisecond
		cc := &concurrency{next: r}
		conc = append(conc, cc)
		return start(t, cfg, cc)
	}
	all := produced{}
	n := 0
	produceWhile := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			for part, rs := range produceKeyed(t, c, cl, 100, 60, n) {
				all[part] = append(all[part], rs...)
			}
			n += 100
			time.Sleep(20 * time.Millisecond)
		}
	}
	a := newMember("a")
	produceWhile(700 * time.Millisecond)
	b := newMember("b")
	produceWhile(time.Second)
	c.waitStable(t, 2)
	produceWhile(500 * time.Millisecond)
	a.crash(t)
	mc := newMember("c")
	produceWhile(time.Second)
	c.waitStable(t, 2)
	if err := b.stop(t); err != nil {
		t.Fatalf("b: %v", err)
	}
	produceWhile(500 * time.Millisecond)
	checkCommittedAtEnd(t, c, cl, all)
	_ = mc
	checkKeyOrder(t, all, log.snapshot())
	most := 0
	for _, cc := range conc {
		cc.mu.Lock()
		most = max(most, cc.most)
		cc.mu.Unlock()
	}
	if most < 2 {
		t.Fatalf("batches of one partition handled at once: got at most %d, want several", most)
	}
	_, dups := firstDeliveries(log.snapshot())
	t.Logf("%d records; %d redelivered; at most %d batches of one partition at once", all.total(), dups, most)
}

// holdKey is a handler that does not return for a batch holding a record
// with key (ignoring its context) until released.
type holdKey struct {
	key     string // as decoded: a JSON string
	next    handler.Handler
	entered chan struct{}
	enter   sync.Once
	release chan struct{}
	free    sync.Once
}

func newHoldKey(t *testing.T, key string, next handler.Handler) *holdKey {
	h := &holdKey{key: `"` + key + `"`, next: next, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.unblock)
	return h
}

func (h *holdKey) unblock() { h.free.Do(func() { close(h.release) }) }

func (h *holdKey) Handle(ctx context.Context, b handler.Batch) error {
	for _, r := range b.Records {
		if string(r.Key) == h.key {
			h.enter.Do(func() { close(h.entered) })
			<-h.release
			break
		}
	}
	return h.next.Handle(ctx, b)
}

// TestCommitStopsAtHeldLane: one lane's batch is held; later records in
// the other lanes are handled, and the committed offset stays at the held
// record until it is released.
func TestCommitStopsAtHeldLane(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c)
	const lanes = 4
	var log sharedLog
	h := newHoldKey(t, "hold", log.recorder("a"))
	start(t, c.config(t, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": fmt.Sprint(lanes), "BATCH_MAX_RECORDS": "5",
	}), h)
	first := produceKeyed(t, c, cl, 20, 7, 0)
	checkCommittedAtEnd(t, c, cl, first)
	held := first[0][len(first[0])-1].Offset + 1
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: c.topic, Key: []byte("hold"), Value: []byte(`{"n":-1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	<-h.entered
	later := produceKeyed(t, c, cl, 300, 97, 20)
	heldLane := keyHash([]byte("hold")) % lanes
	free := map[int64]bool{}
	for _, r := range later[0] {
		if keyHash(r.Key)%lanes != heldLane {
			free[r.Offset] = true
		}
	}
	waitHandled(t, &log, free, "the other lanes to handle every later record")
	time.Sleep(600 * time.Millisecond) // three commit intervals
	if got := committed(t, c, cl)[0]; got != held {
		t.Fatalf("committed offset with the lane of %d held: got %d, want %d", held, got, held)
	}
	for _, d := range log.snapshot() {
		if d.offset > held && !free[d.offset] {
			t.Fatalf("offset %d of the held lane handled before the held batch", d.offset)
		}
	}
	h.unblock()
	checkCommittedAtEnd(t, c, cl, later)
	t.Logf("%d later records in the free lanes handled while %d was held", len(free), held)
}

// TestMemoryBoundedWithOneLaneStuck: one lane of the only partition is stuck
// while the others would finish everything; the records finished after the
// stuck one fill the partition's share, fetching pauses, and the buffered
// bytes stay within the bound.
func TestMemoryBoundedWithOneLaneStuck(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c, kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var log sharedLog
	h := newHoldKey(t, "key-0", log.recorder("a"))
	const limit = 64 << 10
	m := start(t, c.config(t, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": "8", "MAX_BUFFERED_BYTES": fmt.Sprint(limit),
		"BATCH_MAX_BYTES": "16384", "BATCH_MAX_RECORDS": "50",
	}), h)
	p := produceKeyed(t, c, cl, 20000, 1000, 0)
	<-h.entered
	var peak int64
	stable := 0
	last := -1
	for stable < 10 {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, m.c.flow.buffered())
		if n := len(log.snapshot()); n == last {
			stable++
		} else {
			stable, last = 0, n
		}
	}
	// As in TestBackpressure: the share, plus what the client had fetched
	// when it paused (two fetches of at most 64 KiB of small records, each
	// counting recordOverhead).
	bound := int64(limit + 2*((64<<10)+(64<<10)/20*recordOverhead))
	if peak > bound {
		t.Fatalf("buffered bytes with one lane stuck peaked at %d, want at most %d", peak, bound)
	}
	if last >= p.total() {
		t.Fatalf("every record handled with one lane stuck: fetching never paused")
	}
	var tracked int
	for _, pt := range m.c.owned() {
		pt.mu.Lock()
		tracked += pt.offs.track.len()
		pt.mu.Unlock()
	}
	if int64(tracked)*recordOverhead > bound {
		t.Fatalf("records tracked: got %d, want at most %d", tracked, bound/recordOverhead)
	}
	h.unblock()
	checkCommittedAtEndWithin(t, c, cl, p, 90*time.Second)
	checkKeyOrder(t, p, log.snapshot())
	t.Logf("stuck: %d of %d records handled, %d tracked, buffered peak %d (bound %d)", last, p.total(), tracked, peak, bound)
}

// TestDeadLetterWritesOverlap: while a dead-letter write is in flight and
// healthy (not answered yet, no attempt failed), the lanes go on with later
// records, and the commit stops at the record whose copy is not
// acknowledged.
func TestDeadLetterWritesOverlap(t *testing.T) {
	for _, order := range []string{"partition", "key"} {
		t.Run(order, func(t *testing.T) {
			overlapFor(t, time.Minute)
			c := startCluster(t, 1)
			cl := newClient(t, c)
			_, release := c.holdDLQ(t)
			p := produce(t, c, cl, 200, poisonAt(40))
			poison := p[0][40].Offset
			var log sharedLog
			start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "10", "PROCESSING_ORDER": order, "PARTITION_CONCURRENCY": "4"}), log.recorder("a"))
			waitFor(t, 20*time.Second, "every other record handled while the copy is not acknowledged", func() bool {
				return len(log.snapshot()) >= len(p[0])-1
			})
			time.Sleep(500 * time.Millisecond)
			if got := committed(t, c, cl)[0]; got != poison {
				t.Fatalf("committed offset while the copy is in flight: got %d, want %d (the poison record)", got, poison)
			}
			release()
			if dead := readDLQ(t, c, 1); string(dead[0].Value) != "not json" {
				t.Fatalf("dead letter value: got %q", dead[0].Value)
			}
			checkCommittedAtEnd(t, c, cl, p)
			checkDelivered(t, p, log.snapshot(), map[int64]bool{poison: true})
		})
	}
}

// poisonAt makes record i of produce undecodable.
func poisonAt(i int) func(int) []byte {
	return func(n int) []byte {
		if n == i {
			return []byte("not json")
		}
		return nil
	}
}

// TestDeadLetterOutageStopsLaterWork: once a lane's dead-letter write has
// failed an attempt, the lane starts no further batch until the write
// succeeds, so a crash during a dead-letter outage redoes only the batches
// that were in flight when it began. Records of that lane produced after
// the first failed attempt must not be handled before the topic is
// repaired; with key order, the other lanes go on.
func TestDeadLetterOutageStopsLaterWork(t *testing.T) {
	for _, order := range []string{"partition", "key"} {
		t.Run(order, func(t *testing.T) {
			overlapFor(t, time.Minute) // the failure alone must stop the lane
			c := startCluster(t, 1)
			cl := newClient(t, c)
			repair := c.breakDLQ(t)
			first := produce(t, c, cl, 50, poisonAt(40))
			var log sharedLog
			m := start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "10", "PROCESSING_ORDER": order, "PARTITION_CONCURRENCY": "4"}),
				log.recorder("a"), kgo.RecordDeliveryTimeout(time.Second))
			waitFor(t, 20*time.Second, "a failed dead-letter write", func() bool {
				return testutil.ToFloat64(m.metrics.DLQProduceErrors) > 0
			})
			later := produce(t, c, cl, 100, nil)
			checkLaneHeld(t, c, cl, &log, first[0][40], later[0], order == "key", "the dead-letter topic refuses writes")
			repair()
			checkResumed(t, c, cl, &log, first, later, first[0][40].Offset)
		})
	}
}

// TestSlowDeadLetterWriteStopsLaterWork: a dead-letter write in flight for
// longer than deadLetterOverlap stops its lane as a failed one does: the
// client may be retrying it for up to its delivery timeout before it
// reports an error.
func TestSlowDeadLetterWriteStopsLaterWork(t *testing.T) {
	overlapFor(t, 200*time.Millisecond)
	c := startCluster(t, 1)
	cl := newClient(t, c)
	arrived, release := c.holdDLQ(t)
	first := produce(t, c, cl, 50, poisonAt(40))
	var log sharedLog
	start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "10"}), log.recorder("a"))
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("no dead-letter write within 20s")
	}
	time.Sleep(400 * time.Millisecond)
	later := produce(t, c, cl, 100, nil)
	checkLaneHeld(t, c, cl, &log, first[0][40], later[0], false, "the dead-letter write is slow")
	release()
	checkResumed(t, c, cl, &log, first, later, first[0][40].Offset)
}

// checkLaneHeld checks that no record of later in the poison record's lane
// was handled after a second (with byKey, in the lane of its key among 4,
// while the records of the other lanes are handled; else none of later),
// and that the commit did not pass the poison record.
func checkLaneHeld(t *testing.T, c *cluster, cl *kgo.Client, log *sharedLog, poison *kgo.Record, later []*kgo.Record, byKey bool, why string) {
	t.Helper()
	held, free := map[int64]bool{}, map[int64]bool{}
	for _, r := range later {
		if !byKey || keyHash(r.Key)%4 == keyHash(poison.Key)%4 {
			held[r.Offset] = true
		} else {
			free[r.Offset] = true
		}
	}
	waitHandled(t, log, free, "the records of the other lanes handled")
	time.Sleep(time.Second)
	for _, d := range log.snapshot() {
		if held[d.offset] {
			t.Fatalf("offset %d handled in the poison record's lane while %s (it arrived after that began)", d.offset, why)
		}
	}
	if got := committed(t, c, cl)[0]; got > poison.Offset {
		t.Fatalf("committed offset while %s: got %d, past the poison record %d", why, got, poison.Offset)
	}
}

// waitHandled waits until every offset in want was delivered.
func waitHandled(t *testing.T, log *sharedLog, want map[int64]bool, what string) {
	t.Helper()
	waitFor(t, 20*time.Second, what, func() bool {
		seen := map[int64]bool{}
		for _, d := range log.snapshot() {
			if want[d.offset] {
				seen[d.offset] = true
			}
		}
		return len(seen) == len(want)
	})
}

// checkResumed checks that the poison record's copy lands and that every
// other record of first and later is handled and committed.
func checkResumed(t *testing.T, c *cluster, cl *kgo.Client, log *sharedLog, first, later produced, poison int64) {
	t.Helper()
	if dead := readDLQ(t, c, 1); string(dead[0].Value) != "not json" {
		t.Fatalf("dead letter value: got %q", dead[0].Value)
	}
	all := produced{0: append(append([]*kgo.Record(nil), first[0]...), later[0]...)}
	checkCommittedAtEnd(t, c, cl, all)
	checkDelivered(t, all, log.snapshot(), map[int64]bool{poison: true})
}

// TestNoOrderDeliversEverything: PROCESSING_ORDER=none handles every record
// of a partition in its lanes and commits the end.
func TestNoOrderDeliversEverything(t *testing.T) {
	c := startCluster(t, 2)
	cl := newClient(t, c)
	var log sharedLog
	start(t, c.config(t, map[string]string{"PROCESSING_ORDER": "none", "PARTITION_CONCURRENCY": "3"}), log.recorder("a"))
	p := produceKeyed(t, c, cl, 1000, 1, 0)
	checkCommittedAtEnd(t, c, cl, p)
	checkDelivered(t, p, log.snapshot(), nil)
}

// checkDelivered asserts that every produced record was delivered, in any
// order, except the offsets in skip.
func checkDelivered(t *testing.T, p produced, log []delivery, skip map[int64]bool) {
	t.Helper()
	got := map[[2]int64]bool{}
	for _, d := range log {
		got[[2]int64{int64(d.partition), d.offset}] = true
	}
	for part, rs := range p {
		for _, r := range rs {
			if !skip[r.Offset] && !got[[2]int64{int64(part), r.Offset}] {
				t.Fatalf("partition %d offset %d: never delivered", part, r.Offset)
			}
		}
	}
}

// TestLanesHandOverAPartitionBatch: with several lanes, a lane hands over
// what it holds once the partition's lanes hold BATCH_MAX_RECORDS together,
// instead of waiting until its own queue holds that many: the records of
// a partition then wait for at most one batch's worth of later records
// (issue 21: with lanes waiting for their own full batches, key order ran
// at half of partition order's rate with a free handler). BATCH_MAX_WAIT
// is an hour, so only the batch limits can hand anything over.
func TestLanesHandOverAPartitionBatch(t *testing.T) {
	const lanes, batchMax, n = 4, 100, 1000
	c := startCluster(t, 1)
	cl := newClient(t, c)
	p := produceKeyed(t, c, cl, n, n, 0)
	// Lanes filling only their own batches would leave each lane's
	// remainder waiting: more than one batch's worth in all here.
	var perLane [lanes]int
	for _, r := range p[0] {
		perLane[keyHash(r.Key)%lanes]++
	}
	left := 0
	for _, k := range perLane {
		left += k % batchMax
	}
	if left < batchMax {
		t.Fatalf("the keys leave %d records in partial lane batches; the test needs at least %d", left, batchMax)
	}
	var log sharedLog
	m := start(t, c.config(t, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": fmt.Sprint(lanes),
		"BATCH_MAX_RECORDS": fmt.Sprint(batchMax), "BATCH_MAX_WAIT": "1h",
	}), log.recorder("a"))
	defer func() { _ = m.stop(t) }()
	handled := func() int {
		order, _ := firstDeliveries(log.snapshot())
		return len(order[0])
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("all but fewer than %d records handled (lanes' remainders: %d)", batchMax, left), func() bool {
		return handled() > n-batchMax
	})
}
