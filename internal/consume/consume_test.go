package consume

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
)

func TestHappyPathSeveralPartitions(t *testing.T) {
	c := startCluster(t, 6)
	cl := newClient(t, c)
	p := produce(t, c, cl, 3000, nil)
	if len(p) != 6 {
		t.Fatalf("records landed in %d partitions, want 6", len(p))
	}
	var log sharedLog
	m := start(t, c.config(t, nil), log.recorder("a"))
	waitFor(t, 20*time.Second, "3000 deliveries", func() bool { return len(log.snapshot()) >= 3000 })
	checkCommittedAtEnd(t, c, cl, p)
	if err := m.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	deliveries := log.snapshot()
	checkAllDelivered(t, p, deliveries, nil)
	if _, dups := firstDeliveries(deliveries); dups != 0 {
		t.Fatalf("got %d duplicate deliveries, want 0", dups)
	}
	if got := testutil.ToFloat64(m.metrics.Records.WithLabelValues(c.topic, "processed")); got != 3000 {
		t.Fatalf("consumer_records_total{processed}: got %v, want 3000", got)
	}
	if got := testutil.ToFloat64(m.metrics.BufferedBytes); got != 0 {
		t.Fatalf("consumer_buffered_bytes after draining: got %v, want 0", got)
	}
}

// TestPoisonRecordsDeadLettered: undecodable records go to the DLQ with
// their exact bytes and every contract header, and the rest flow.
func TestPoisonRecordsDeadLettered(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	poison := func(i int) []byte {
		switch i % 50 {
		case 7:
			return []byte(`{"n":` + strconv.Itoa(i)) // truncated JSON
		case 31:
			return []byte{0xff, 0x00, 0xfe} // binary garbage
		}
		return nil
	}
	p := produce(t, c, cl, 500, poison)
	bad := map[int32]map[int64]bool{}
	byOffset := map[[2]int64]*kgo.Record{}
	nBad := 0
	for part, recs := range p {
		for _, r := range recs {
			byOffset[[2]int64{int64(part), r.Offset}] = r
			i, _ := strconv.Atoi(string(r.Key[1:]))
			if poison(i) != nil {
				if bad[part] == nil {
					bad[part] = map[int64]bool{}
				}
				bad[part][r.Offset] = true
				nBad++
			}
		}
	}
	var log sharedLog
	start(t, c.config(t, nil), log.recorder("a"))
	before := time.Now()
	dead := readDLQ(t, c, nBad)
	checkCommittedAtEnd(t, c, cl, p)
	checkAllDelivered(t, p, log.snapshot(), bad)
	// Every poison record has its own copy: as many copies as poison
	// records could still hide one missing behind another's duplicate.
	seen := map[[2]int64]bool{}
	for _, d := range dead {
		part, _ := strconv.Atoi(header(d, dlq.HeaderPartition))
		off, _ := strconv.ParseInt(header(d, dlq.HeaderOffset), 10, 64)
		orig := byOffset[[2]int64{int64(part), off}]
		if orig == nil || !bad[int32(part)][off] {
			t.Fatalf("dead letter for %d/%d is not a poison record", part, off)
		}
		if seen[[2]int64{int64(part), off}] {
			t.Fatalf("dead letter for %d/%d written twice", part, off)
		}
		seen[[2]int64{int64(part), off}] = true
		if string(d.Key) != string(orig.Key) || string(d.Value) != string(orig.Value) {
			t.Fatalf("dead letter %d/%d: got key %q value %q, want %q %q", part, off, d.Key, d.Value, orig.Key, orig.Value)
		}
		if d.Headers[0].Key != "trace-id" || string(d.Headers[0].Value) != string(orig.Headers[0].Value) {
			t.Fatalf("dead letter %d/%d: original header got %v, want %v", part, off, d.Headers[0], orig.Headers[0])
		}
		want := map[string]string{
			dlq.HeaderTopic:     c.topic,
			dlq.HeaderTimestamp: strconv.FormatInt(orig.Timestamp.UnixMilli(), 10),
			dlq.HeaderGroup:     c.group,
			dlq.HeaderKind:      "decode",
			dlq.HeaderAttempts:  "0",
		}
		for k, v := range want {
			if got := header(d, k); got != v {
				t.Fatalf("dead letter %d/%d header %s: got %q, want %q", part, off, k, got, v)
			}
		}
		if msg := header(d, dlq.HeaderMessage); msg == "" || msg[:6] != "value:" {
			t.Fatalf("dead letter %d/%d: error message %q should say the value failed", part, off, msg)
		}
		at, err := time.Parse(time.RFC3339, header(d, dlq.HeaderFailedAt))
		if err != nil || at.Before(before.Add(-time.Second)) {
			t.Fatalf("dead letter %d/%d: dlq.failed.at %q: %v", part, off, header(d, dlq.HeaderFailedAt), err)
		}
	}
}

// TestHandlerFailuresRetriedThenDeadLettered: some records fail every
// attempt (dead-lettered after HANDLER_MAX_ATTEMPTS), others fail once and
// succeed on retry (not dead-lettered), one batch is refused permanently.
func TestHandlerFailuresRetriedThenDeadLettered(t *testing.T) {
	c := startCluster(t, 2)
	cl := newClient(t, c)
	p := produce(t, c, cl, 200, nil)
	permanent, transient := map[string]bool{}, map[string]bool{}
	for i := range 200 {
		switch {
		case i%40 == 3:
			permanent[`"k`+strconv.Itoa(i)+`"`] = true
		case i%10 == 5:
			transient[`"k`+strconv.Itoa(i)+`"`] = true
		}
	}
	var log sharedLog
	r := log.recorder("a")
	r.fail = func(b handler.Batch, attempts map[int64]int) error {
		var failed []int64
		for _, rec := range b.Records {
			if permanent[string(rec.Key)] || (transient[string(rec.Key)] && attempts[rec.Raw.Offset] == 1) {
				failed = append(failed, rec.Raw.Offset)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		return &handler.ItemFailures{Offsets: failed, Err: errors.New("downstream said no")}
	}
	m := start(t, c.config(t, map[string]string{"HANDLER_MAX_ATTEMPTS": "3"}), r)
	dead := readDLQ(t, c, len(permanent))
	checkCommittedAtEnd(t, c, cl, p)
	for _, d := range dead {
		k := `"` + string(d.Key) + `"`
		if !permanent[k] {
			t.Fatalf("dead-lettered %s, which should have succeeded", k)
		}
		if got := header(d, dlq.HeaderKind); got != "handler" {
			t.Fatalf("%s: dlq.error.kind got %q, want handler", k, got)
		}
		if got := header(d, dlq.HeaderAttempts); got != "3" {
			t.Fatalf("%s: dlq.attempts got %q, want 3", k, got)
		}
		if got := header(d, dlq.HeaderMessage); got == "" {
			t.Fatalf("%s: empty dlq.error.message", k)
		}
	}
	// Every record was delivered; permanent ones three times, transient
	// ones twice, the others once.
	calls := map[string]int{}
	for _, d := range log.snapshot() {
		calls[d.key]++
	}
	for _, recs := range p {
		for _, rec := range recs {
			k := `"` + string(rec.Key) + `"`
			want := 1
			if permanent[k] {
				want = 3
			} else if transient[k] {
				want = 2
			}
			if calls[k] != want {
				t.Fatalf("%s: handled %d times, want %d", k, calls[k], want)
			}
		}
	}
	wantRetries := float64(2*len(permanent) + len(transient))
	if got := testutil.ToFloat64(m.metrics.HandlerRetries.WithLabelValues(c.topic)); got != wantRetries {
		t.Fatalf("consumer_handler_retries_total: got %v, want %v", got, wantRetries)
	}
	if got := testutil.ToFloat64(m.metrics.Records.WithLabelValues(c.topic, "dead_lettered")); got != float64(len(permanent)) {
		t.Fatalf("consumer_records_total{dead_lettered}: got %v, want %d", got, len(permanent))
	}
}

// TestPermanentBatchFailureNotRetried: a handler.Permanent error
// dead-letters the whole batch after one attempt.
// TestRejectedBatchBisectedNotRetried: a batch the handler rejects
// (handler.Permanent, as for an HTTP 400) is never retried as it is: it is
// bisected down to single records, each dead-lettered as handler after the
// one attempt of each level that held it.
func TestRejectedBatchBisectedNotRetried(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c)
	p := produce(t, c, cl, 10, nil)
	var calls atomic.Int32
	var log sharedLog
	r := log.recorder("a")
	r.fail = func(handler.Batch, map[int64]int) error {
		calls.Add(1)
		return handler.Permanent(errors.New("HTTP 400: bad request"))
	}
	m := start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "100", "BATCH_MAX_WAIT": "300ms"}), r)
	dead := readDLQ(t, c, 10)
	checkCommittedAtEnd(t, c, cl, p)
	for _, d := range dead {
		// A batch of at most 10 is halved at most 4 times: 5 levels.
		if n, _ := strconv.Atoi(header(d, dlq.HeaderAttempts)); n < 1 || n > 5 || header(d, dlq.HeaderKind) != "handler" {
			t.Fatalf("got attempts %q kind %q, want 1..5 handler", header(d, dlq.HeaderAttempts), header(d, dlq.HeaderKind))
		}
	}
	// Bisecting n records down to single ones takes 2n-1 calls at most.
	if got := calls.Load(); got > 19 {
		t.Fatalf("handler called %d times, want at most 19", got)
	}
	if got := testutil.ToFloat64(m.metrics.HandlerRetries.WithLabelValues(c.topic)); got != 0 {
		t.Fatalf("retries: got %v, want 0", got)
	}
}

// TestIdlePartitionFlushedByTime: a lone record on an idle partition is
// handed over once it has waited BATCH_MAX_WAIT, in a batch of one.
func TestIdlePartitionFlushedByTime(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c)
	var log sharedLog
	var batches [][]int64
	r := log.recorder("a")
	r.fail = func(b handler.Batch, _ map[int64]int) error {
		var offs []int64
		for _, rec := range b.Records {
			offs = append(offs, rec.Raw.Offset)
		}
		batches = append(batches, offs)
		return nil
	}
	m := start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "500", "BATCH_MAX_WAIT": "400ms"}), r)
	waitFor(t, 10*time.Second, "the group to be joined", func() bool { ok, _ := m.health.Ready(); return ok })
	sent := time.Now()
	produce(t, c, cl, 1, nil)
	waitFor(t, 10*time.Second, "the lone record", func() bool { return len(log.snapshot()) == 1 })
	waited := time.Since(sent)
	if waited < 400*time.Millisecond {
		t.Fatalf("delivered after %v, before BATCH_MAX_WAIT (400ms)", waited)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(batches) != 1 || len(batches[0]) != 1 {
		t.Fatalf("batches: got %v, want one batch of one record", batches)
	}
}

// TestCrashAndRestartLosesNothing: a member killed without committing is
// replaced; everything is delivered, and the only duplicates are records
// after the last commit of the crashed member.
func TestCrashAndRestartLosesNothing(t *testing.T) {
	c := startCluster(t, 4)
	cl := newClient(t, c)
	p := produce(t, c, cl, 2000, nil)
	var log sharedLog
	a := log.recorder("a")
	a.slow = 5 * time.Millisecond
	cfg := c.config(t, map[string]string{"BATCH_MAX_RECORDS": "20", "KAFKA_COMMIT_INTERVAL": "100ms"})
	ma := start(t, cfg, a)
	waitFor(t, 20*time.Second, "some progress", func() bool { return len(log.snapshot()) >= 600 })
	ma.crash(t)
	atCrash := committed(t, c, cl)
	handledByA := len(log.snapshot())

	start(t, cfg, log.recorder("b"))
	checkCommittedAtEnd(t, c, cl, p)
	deliveries := log.snapshot()
	checkAllDelivered(t, p, deliveries, nil)

	// Duplicates are exactly the records a handled past its last commit.
	_, dups := firstDeliveries(deliveries)
	wantDups := 0
	for _, d := range deliveries[:handledByA] {
		if d.offset >= atCrash[d.partition] {
			wantDups++
		}
	}
	if dups != wantDups {
		t.Fatalf("duplicates: got %d, want %d (a's deliveries past its last commit)", dups, wantDups)
	}
	for _, d := range deliveries[handledByA:] {
		if d.member != "b" {
			t.Fatalf("delivery by %s after the crash", d.member)
		}
	}
	t.Logf("crash after %d deliveries; %d redelivered", handledByA, dups)
}

// TestMembersJoinAndLeaveWhileRecordsFlow: one, two, then three members;
// then two leave. Partitions move while records are produced; nothing is
// lost, first deliveries are in order, and with graceful revokes (in-flight
// batches finish and commit) nothing is delivered twice.
func TestMembersJoinAndLeaveWhileRecordsFlow(t *testing.T) {
	c := startCluster(t, 6)
	cl := newClient(t, c)
	var log sharedLog
	cfg := c.config(t, map[string]string{"BATCH_MAX_RECORDS": "20"})
	newMember := func(name string) *member {
		r := log.recorder(name)
		r.slow = 2 * time.Millisecond
		return start(t, cfg, r)
	}
	all := produced{}
	add := func(p produced) {
		for part, rs := range p {
			all[part] = append(all[part], rs...)
		}
	}
	produceWhile := func(d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			add(produce(t, c, cl, 50, nil))
			time.Sleep(20 * time.Millisecond)
		}
	}

	a := newMember("a")
	produceWhile(500 * time.Millisecond)
	b := newMember("b")
	produceWhile(time.Second)
	c.waitStable(t, 2)
	mc := newMember("c")
	produceWhile(time.Second)
	c.waitStable(t, 3)
	produceWhile(500 * time.Millisecond)
	if err := a.stop(t); err != nil {
		t.Fatalf("a: %v", err)
	}
	produceWhile(time.Second)
	if err := b.stop(t); err != nil {
		t.Fatalf("b: %v", err)
	}
	produceWhile(500 * time.Millisecond)
	checkCommittedAtEnd(t, c, cl, all)
	_ = mc

	deliveries := log.snapshot()
	checkAllDelivered(t, all, deliveries, nil)
	members := map[string]int{}
	for _, d := range deliveries {
		members[d.member]++
	}
	if len(members) != 3 {
		t.Fatalf("deliveries by member: got %v, want all three to have worked", members)
	}
	if _, dups := firstDeliveries(deliveries); dups != 0 {
		t.Fatalf("got %d duplicates across graceful rebalances, want 0", dups)
	}
	t.Logf("%d records; deliveries by member %v", all.total(), members)
}

// TestDLQUnwritable: while the dead-letter topic rejects writes, the
// commit stops at the poison record (the partition's later records are
// handled meanwhile), /readyz turns 503; once writes succeed, everything is
// committed.
func TestDLQUnwritable(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c)
	repair := c.breakDLQ(t)
	p := produce(t, c, cl, 100, func(i int) []byte {
		if i == 40 {
			return []byte("not json")
		}
		return nil
	})
	poison := p[0][40].Offset
	var log sharedLog
	m := start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "10", "UNREADY_AFTER": "300ms"}),
		log.recorder("a"), kgo.RecordDeliveryTimeout(time.Second))

	waitFor(t, 20*time.Second, "the group to be joined", func() bool {
		ok, why := m.health.Ready()
		return ok || strings.Contains(why, "dead-letter")
	})
	waitFor(t, 20*time.Second, "readiness to turn 503 on the dead-letter topic", func() bool {
		_, why := m.health.Ready()
		return strings.Contains(why, "cannot write to dead-letter topic "+c.dlq) && getReady(t, m.health) == 503
	})
	waitFor(t, 10*time.Second, "commits up to the poison record", func() bool { return committed(t, c, cl)[0] == poison })
	time.Sleep(500 * time.Millisecond) // the partition keeps waiting
	if got := committed(t, c, cl)[0]; got != poison {
		t.Fatalf("committed offset moved to %d during the outage, want %d (the poison record)", got, poison)
	}
	// The partition goes on while the copy is not written (dead-letter
	// writes overlap later work); only the commit waits.
	waitFor(t, 10*time.Second, "records after the poison handled", func() bool {
		return len(log.snapshot()) >= len(p[0])-1
	})
	if got := committed(t, c, cl)[0]; got != poison {
		t.Fatalf("committed offset moved to %d during the outage, want %d (the poison record)", got, poison)
	}
	if got := testutil.ToFloat64(m.metrics.DLQProduceErrors); got < 1 {
		t.Fatalf("consumer_dlq_produce_errors_total: got %v, want >= 1", got)
	}

	repair()
	dead := readDLQ(t, c, 1)
	if string(dead[0].Value) != "not json" {
		t.Fatalf("dead letter value: got %q", dead[0].Value)
	}
	checkCommittedAtEnd(t, c, cl, p)
	checkAllDelivered(t, p, log.snapshot(), map[int32]map[int64]bool{0: {poison: true}})
	waitFor(t, 5*time.Second, "readiness back to 200", func() bool { return getReady(t, m.health) == 200 })
}

// TestShutdownCommitsEverythingHandled: SIGTERM mid-stream finishes the
// in-flight batches and commits exactly what was handled.
func TestShutdownCommitsEverythingHandled(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	p := produce(t, c, cl, 3000, nil)
	var log sharedLog
	r := log.recorder("a")
	r.slow = 20 * time.Millisecond
	m := start(t, c.config(t, map[string]string{"BATCH_MAX_RECORDS": "25", "KAFKA_COMMIT_INTERVAL": "1h"}), r)
	waitFor(t, 20*time.Second, "some progress", func() bool { return len(log.snapshot()) >= 300 })
	if err := m.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	deliveries := log.snapshot()
	if len(deliveries) == p.total() {
		t.Fatal("everything was handled before the shutdown; the test needs a slower handler")
	}
	handled := map[int32]int64{}
	for _, d := range deliveries {
		handled[d.partition] = max(handled[d.partition], d.offset+1)
	}
	got := committed(t, c, cl)
	for part := range p {
		if got[part] != handled[part] {
			t.Fatalf("partition %d: committed %d, want %d (one past the last handled)", part, got[part], handled[part])
		}
	}
	checkAllDelivered(t, prefix(p, handled), deliveries, nil)
}

// prefix keeps the records of p below the offsets in upTo.
func prefix(p produced, upTo map[int32]int64) produced {
	out := produced{}
	for part, recs := range p {
		for _, r := range recs {
			if r.Offset < upTo[part] {
				out[part] = append(out[part], r)
			}
		}
	}
	return out
}

// TestBackpressure: with a small MAX_BUFFERED_BYTES and a slow handler,
// fetching pauses and resumes, and nothing is lost across pauses.
func TestBackpressure(t *testing.T) {
	c := startCluster(t, 2)
	// Uncompressed record batches of 16 KiB, like a Java producer's
	// default batch.size: fetch limits count compressed bytes, and a fetch
	// returns at least one whole batch, so the bound below holds for
	// uncompressed data (compressed data overshoots by its ratio).
	cl := newClient(t, c, kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := make([]byte, 1000)
	for i := range big {
		big[i] = 'x'
	}
	p := produce(t, c, cl, 2000, func(i int) []byte { return []byte(`{"n":` + strconv.Itoa(i) + `,"pad":"` + string(big) + `"}`) })
	var log sharedLog
	r := log.recorder("a")
	var m *member
	var paused atomic.Bool
	var maxBuffered atomic.Int64
	r.fail = func(handler.Batch, map[int64]int) error {
		if len(m.c.client.PauseFetchPartitions(nil)) > 0 {
			paused.Store(true)
		}
		b := m.c.flow.buffered()
		for {
			cur := maxBuffered.Load()
			if b <= cur || maxBuffered.CompareAndSwap(cur, b) {
				break
			}
		}
		return nil
	}
	r.slow = 2 * time.Millisecond
	m = start(t, c.config(t, map[string]string{
		"MAX_BUFFERED_BYTES": "65536", "BATCH_MAX_BYTES": "16384", "BATCH_MAX_RECORDS": "500",
	}), r)
	checkCommittedAtEndWithin(t, c, cl, p, 90*time.Second)
	checkAllDelivered(t, p, log.snapshot(), nil)
	if !paused.Load() {
		t.Fatal("fetching never paused with 2 MB of records and a 64 KiB buffer")
	}
	// The buffer can exceed the limit by what the client had fetched when
	// it paused: at most two fetches of 64 KiB (the floor of the fetch
	// size), of about 65 records of 1 KB, each also counting recordOverhead.
	if got, bound := maxBuffered.Load(), int64(65536+2*((64<<10)+66*recordOverhead)); got > bound {
		t.Fatalf("buffered bytes peaked at %d, want at most %d", got, bound)
	}
	t.Logf("buffered bytes peaked at %d with a 65536 limit", maxBuffered.Load())
}

func TestMissingDLQTopicIsClearError(t *testing.T) {
	c := startClusterWith(t, 1, false)
	m := start(t, c.config(t, nil), handler.Discard{})
	select {
	case err := <-m.done:
		close(m.done)
		var missing *MissingTopicsError
		if !errors.As(err, &missing) || len(missing.DLQ) != 1 || missing.DLQ[0] != c.dlq || len(missing.Source) != 0 {
			t.Fatalf("got %v, want a MissingTopicsError naming %s", err, c.dlq)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return on a missing dead-letter topic")
	}
}

func TestStaticMembership(t *testing.T) {
	c := startCluster(t, 2)
	m := start(t, c.config(t, map[string]string{"KAFKA_INSTANCE_ID": "pod-0"}), handler.Discard{})
	waitFor(t, 10*time.Second, "join", func() bool { ok, _ := m.health.Ready(); return ok })
	if ids := c.instanceIDs(t); len(ids) != 1 || ids[0] != "pod-0" {
		t.Fatalf("group members' instance ids: got %v, want [pod-0]", ids)
	}
}
