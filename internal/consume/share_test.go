package consume

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/idempotency"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
	"github.com/msk-consumer/msk-consumer/internal/share"
)

// The share group tests run on kfake, with a short acquisition lock and a
// fast lock sweep, so that a lock expiry happens within a test; on a real
// broker (KAFKA_TEST_BROKERS) with the same lock and limit set on the
// group (scripts/kafka lowers the brokers' minimum lock for it).
const shareLockMs = 1000

// startShareCluster starts kfake with the source topic (parts partitions),
// its dead-letter topic and the given delivery limit, or creates them on
// the real broker and sets the group's share.record.lock.duration.ms and
// share.delivery.count.limit. A real broker that does not serve share
// groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1) skips the
// test, except in a share tier (KAFKA_TEST_SHARE=1, make test-kafka-share),
// which fails instead: a share tier that passed there would claim coverage
// it lacks.
func startShareCluster(t testing.TB, parts int32, limit int) *cluster {
	t.Helper()
	if seeds := os.Getenv("KAFKA_TEST_BROKERS"); seeds != "" {
		tt, ok := t.(*testing.T)
		if !ok {
			t.Fatal("the share group benchmark runs on kfake: unset KAFKA_TEST_BROKERS")
		}
		c := realCluster(tt, strings.Split(seeds, ","), parts, true)
		if !servesShare(tt, c) {
			if shareTier() {
				t.Fatal("KAFKA_TEST_SHARE=1, but the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
			}
			t.Skip("the broker does not serve share groups (ShareGroupHeartbeat: Kafka 4.2+ with share.version=1)")
		}
		setShareGroupConfigs(tt, c, map[string]string{
			share.GroupLockDuration:  strconv.Itoa(shareLockMs),
			share.GroupDeliveryLimit: strconv.Itoa(limit),
		})
		return c
	}
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic), kfake.SeedTopics(2, dlqTopic),
		kfake.BrokerConfigs(map[string]string{
			"group.share.record.lock.duration.ms": strconv.Itoa(shareLockMs),
			"share.record.lock.sweep.interval.ms": "50",
			"group.share.delivery.count.limit":    strconv.Itoa(limit),
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	return &cluster{addrs: kf.ListenAddrs(), topic: topic, dlq: dlqTopic, group: group, kf: kf}
}

// shareTier reports whether the suite runs as a share tier
// (KAFKA_TEST_SHARE=1, make test-kafka-share).
func shareTier() bool { return os.Getenv("KAFKA_TEST_SHARE") == "1" }

// servesShare reports whether every broker of the real cluster serves
// ShareGroupHeartbeat (KIP-932).
func servesShare(t *testing.T, c *cluster) bool {
	t.Helper()
	vs, err := c.adm.ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ok := true
	vs.Each(func(v kadm.BrokerApiVersions) {
		if _, has := v.KeyMaxVersion(int16(kmsg.ShareGroupHeartbeat)); !has {
			ok = false
		}
	})
	return ok
}

// setShareGroupConfigs sets configs of the test's group on the real broker
// (IncrementalAlterConfigs on the GROUP resource), and waits until
// DescribeConfigs returns them: what the member reads at start.
func setShareGroupConfigs(t *testing.T, c *cluster, set map[string]string) {
	t.Helper()
	ctx := context.Background()
	cl := newClient(t, c)
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = c.group
	for k, v := range set {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Op, cfg.Value = k, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		res.Configs = append(res.Configs, cfg)
	}
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("setting share group configs %v: %v", set, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			t.Fatalf("setting share group configs %v: %v %s", set, err, msg)
		}
	}
	waitFor(t, 10*time.Second, "the group's configs to read back", func() bool {
		s, err := share.Read(ctx, cl, c.group)
		return err == nil && strconv.Itoa(int(s.DeliveryLimit)) == set[share.GroupDeliveryLimit] &&
			strconv.FormatInt(s.LockDuration.Milliseconds(), 10) == set[share.GroupLockDuration]
	})
}

func shareConfig(t *testing.T, c *cluster, set map[string]string) config.Config {
	t.Helper()
	env := map[string]string{"KAFKA_GROUP_TYPE": "share", "PARTITION_CONCURRENCY": "2"}
	for k, v := range set {
		env[k] = v
	}
	return c.config(t, env)
}

// shareOffsets returns the group's start offset and lag (KIP-1226) per
// partition (-1: none), retrying for a while what a real broker answers
// while its share coordinator starts (COORDINATOR_NOT_AVAILABLE,
// COORDINATOR_LOAD_IN_PROGRESS).
func shareOffsets(t *testing.T, c *cluster, cl *kgo.Client) map[int32]kadm.ShareOffset {
	t.Helper()
	var out map[int32]kadm.ShareOffset
	var last error
	waitFor(t, 20*time.Second, "the share group's start offsets", func() bool {
		out, last = readShareOffsets(c, cl)
		if last != nil && !kerr.IsRetriable(last) {
			t.Fatal(last)
		}
		return last == nil
	})
	return out
}

func readShareOffsets(c *cluster, cl *kgo.Client) (map[int32]kadm.ShareOffset, error) {
	ds, err := kadm.NewClient(cl).DescribeShareGroupOffsets(context.Background(), c.group)
	if err == nil {
		err = ds[c.group].Err
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]kadm.ShareOffset{}
	ds[c.group].Offsets.Each(func(o kadm.ShareOffset) {
		if o.Topic == c.topic && o.Err == nil {
			out[o.Partition] = o
		}
	})
	return out, nil
}

// shareSettled reports whether no record below end is left to deliver or
// acknowledge: the start offset reached end (kfake), or the brokers count
// no record of the partition still to acknowledge (the lag of KIP-1226;
// Apache Kafka 4.4 moves the start offset it reports only when later
// records are acquired).
func shareSettled(o kadm.ShareOffset, end int64) bool {
	return o.StartOffset >= end || (o.StartOffset >= 0 && o.Lag == 0)
}

// shareUntouched reports whether none of the partition's n records was
// acknowledged or archived: the start offset did not move, and the lag,
// where the brokers report it, is every record.
func shareUntouched(o kadm.ShareOffset, n int64) bool {
	return o.StartOffset <= 0 && (o.Lag < 0 || o.Lag == n)
}

// waitShareDone waits until the group settled every partition up to what
// was produced: every record accepted (or archived, which the tests rule
// out by what the handler saw).
func waitShareDone(t *testing.T, c *cluster, cl *kgo.Client, want produced, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "every record acknowledged", func() bool {
		got := shareOffsets(t, c, cl)
		for p, rs := range want {
			o, ok := got[p]
			if !ok || !shareSettled(o, rs[len(rs)-1].Offset+1) {
				return false
			}
		}
		return true
	})
}

// handledOnce checks that every produced record was handled, by offset,
// and returns how many handler deliveries there were in all.
func handledOnce(t *testing.T, log []delivery, want produced, except map[[2]int64]bool) {
	t.Helper()
	seen := map[[2]int64]bool{}
	for _, d := range log {
		seen[[2]int64{int64(d.partition), d.offset}] = true
	}
	missing := 0
	for p, rs := range want {
		for _, r := range rs {
			k := [2]int64{int64(p), r.Offset}
			if !seen[k] && !except[k] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d records never handled", missing, want.total())
	}
}

// TestShareGroupHandlesEverything: two members of a share group on three
// partitions handle every record, the group's start offsets reach the end,
// nothing is dead-lettered, and each record was accepted (the
// acknowledgement metric).
func TestShareGroupHandlesEverything(t *testing.T) {
	c := startShareCluster(t, 3, 5)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 600, nil)
	var log sharedLog
	cfg := shareConfig(t, c, nil)
	a := start(t, cfg, log.recorder("a"))
	b := start(t, cfg, log.recorder("b"))
	waitShareDone(t, c, cl, want, 30*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	accepted := testutil.ToFloat64(a.metrics.ShareAcks.WithLabelValues(c.topic, metrics.AckAccept)) +
		testutil.ToFloat64(b.metrics.ShareAcks.WithLabelValues(c.topic, metrics.AckAccept))
	if accepted < float64(want.total()) {
		t.Fatalf("got %v records accepted, want at least %d", accepted, want.total())
	}
}

// TestShareCrashedMemberLosesNothing: a member that crashes holding records
// (its handler stuck) loses none: a member that joins afterwards handles
// them, on a later delivery, and none is dead-lettered.
func TestShareCrashedMemberLosesNothing(t *testing.T) {
	c := startShareCluster(t, 2, 5)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 200, nil)
	var log sharedLog
	cfg := shareConfig(t, c, nil)
	stuck := make(chan struct{})
	var entered sync.Once
	inHandler := make(chan struct{})
	a := start(t, cfg, handlerFunc(func(ctx context.Context, b handler.Batch) error {
		entered.Do(func() { close(inHandler) })
		select {
		case <-stuck:
		case <-ctx.Done():
		}
		return ctx.Err()
	}))
	<-inHandler
	a.crash(t)
	close(stuck)
	b := start(t, cfg, log.recorder("b"))
	waitShareDone(t, c, cl, want, 30*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	_ = b.stop(t)
}

// TestShareOutageLongerThanLockTimesLimit: a handler unavailable for longer
// than the acquisition lock times the delivery limit spends no delivery:
// the locks are renewed, nothing is dead-lettered or archived, and every
// record is handled once it is back.
func TestShareOutageLongerThanLockTimesLimit(t *testing.T) {
	const limit = 2
	c := startShareCluster(t, 1, limit)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 100, nil)
	var log sharedLog
	var down atomic.Bool
	down.Store(true)
	rec := log.recorder("a")
	rec.fail = func(handler.Batch, map[int64]int) error {
		if down.Load() {
			return handler.Unavailable(errors.New("downstream is down"))
		}
		return nil
	}
	m := start(t, shareConfig(t, c, nil), rec)
	waitFor(t, 10*time.Second, "the member holding every record", func() bool {
		return testutil.ToFloat64(m.metrics.ShareInFlight) == float64(want.total())
	})
	// The group's backlog, as the member exports it for autoscaling:
	// every record, held but not acknowledged. (Apache Kafka 4.4 reports
	// no start offset and no lag for a partition of which the group has
	// acknowledged nothing yet, as here: there the gauge stays unset.)
	if c.kf != nil {
		waitFor(t, 10*time.Second, "the share lag at every record", func() bool {
			return testutil.ToFloat64(m.metrics.LagFor(c.topic, 0)) == float64(want.total())
		})
	}
	// The status page shows the share group and its held records' age.
	snap := m.c.Snapshot(time.Now())
	if snap.Group.Type != "share" || len(snap.Partitions) != 1 || snap.Partitions[0].Committed != -1 || snap.Partitions[0].LagSeconds == nil {
		t.Fatalf("got status %+v, want the share group with one partition, nothing committed, the age of what it holds", snap)
	}
	// Another member of the group gets nothing while the locks are held:
	// its fetches are also what makes kfake hand out records whose locks
	// expired.
	spy := newClient(t, c, kgo.ShareGroup(c.group), kgo.ConsumeTopics(c.topic), kgo.MaxConcurrentFetches(0))
	outage, cancel := context.WithTimeout(context.Background(), 3*limit*shareLockMs*time.Millisecond)
	for outage.Err() == nil {
		if rs := spy.PollFetches(outage).Records(); len(rs) > 0 {
			cancel()
			t.Fatalf("during the outage another member got %d records: their locks expired", len(rs))
		}
	}
	cancel()
	spy.Close()
	if got := shareOffsets(t, c, cl)[0]; !shareUntouched(got, int64(want.total())) {
		t.Fatalf("during the outage the start offset or the lag moved (%+v): records were accepted or archived unhandled", got)
	}
	down.Store(false)
	waitShareDone(t, c, cl, want, 30*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	waitFor(t, 10*time.Second, "the share lag at zero", func() bool {
		return testutil.ToFloat64(m.metrics.LagFor(c.topic, 0)) == 0
	})
	if err := m.stop(t); err != nil {
		t.Fatal(err)
	}
	// Every record acquired once: no lock expired, no delivery spent.
	if got := testutil.ToFloat64(m.metrics.ShareAcquired.WithLabelValues(c.topic)); got != float64(want.total()) {
		t.Fatalf("got %v records acquired, want %d: the outage spent deliveries", got, want.total())
	}
	if n := testutil.ToFloat64(m.metrics.ShareRenewals.WithLabelValues(c.topic)); n == 0 {
		t.Fatal("no lock renewals counted during the outage")
	}
}

// TestShareDeliveryLimitPoison: a record that crashes its member every time
// it is handled is dead-lettered as delivery-limit on the group's last
// allowed delivery, without reaching the handler then; every other record
// is handled, its batch-mates included: delivered again after the first
// crash, each is handled on its own, beside the others, so the next crash
// takes only the poison record's delivery.
func TestShareDeliveryLimitPoison(t *testing.T) {
	const limit = 3
	c := startShareCluster(t, 1, limit)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 60, nil)
	poison := want[0][17]
	var log sharedLog
	cfg := shareConfig(t, c, map[string]string{"SHUTDOWN_TIMEOUT": "2s"})
	testDone := make(chan struct{})
	defer close(testDone)
	var poisonCalls atomic.Int32
	for round := range limit {
		hit := make(chan struct{})
		var once sync.Once
		rec := log.recorder("m" + strconv.Itoa(round))
		m := start(t, cfg, handlerFunc(func(ctx context.Context, b handler.Batch) error {
			for _, r := range b.Records {
				if r.Raw.Offset == poison.Offset {
					poisonCalls.Add(1)
					once.Do(func() { close(hit) })
					<-testDone // the record "kills" its member: it never returns
					return nil
				}
			}
			return rec.Handle(ctx, b)
		}))
		if round == limit-1 {
			// The last delivery: dead-lettered, not handed over.
			dl := readDLQ(t, c, 1)
			if k := string(headerOf(dl[0], dlq.HeaderKind)); k != string(dlq.KindDeliveryLimit) {
				t.Fatalf("dead letter of kind %q, want %q", k, dlq.KindDeliveryLimit)
			}
			if o := string(headerOf(dl[0], dlq.HeaderOffset)); o != strconv.FormatInt(poison.Offset, 10) {
				t.Fatalf("dead letter of offset %s, want %d", o, poison.Offset)
			}
			waitShareDone(t, c, cl, want, 30*time.Second)
			_ = m.stop(t)
			break
		}
		select {
		case <-hit:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the poison record never reached the handler", round)
		}
		// The member dies a little after the record took it down (a
		// process running out of memory), as the records handled beside
		// it are acknowledged.
		time.Sleep(300 * time.Millisecond)
		m.crash(t)
	}
	if n := poisonCalls.Load(); n != limit-1 {
		t.Fatalf("the poison record reached the handler %d times, want %d", n, limit-1)
	}
	handledOnce(t, log.snapshot(), want, map[[2]int64]bool{{0, poison.Offset}: true})
}

// TestShareMembersJoinAndLeave: members join and leave (SIGTERM) while
// records flow; every record is handled and none is dead-lettered.
func TestShareMembersJoinAndLeave(t *testing.T) {
	c := startShareCluster(t, 3, 5)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	var log sharedLog
	cfg := shareConfig(t, c, map[string]string{"BATCH_MAX_RECORDS": "10"})
	slow := func(name string) *recorder {
		r := log.recorder(name)
		r.slow = 5 * time.Millisecond
		return r
	}
	a := start(t, cfg, slow("a"))
	want := produce(t, c, cl, 300, nil)
	b := start(t, cfg, slow("b"))
	waitFor(t, 20*time.Second, "some records handled", func() bool { return len(log.snapshot()) > 50 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	more := produce(t, c, cl, 300, nil)
	for p, rs := range more {
		want[p] = append(want[p], rs...)
	}
	d := start(t, cfg, slow("d"))
	waitShareDone(t, c, cl, want, 60*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	_ = b.stop(t)
	_ = d.stop(t)
}

func headerOf(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// TestShareShutdownReleasesUnstarted: on SIGTERM the records not started
// are released for other members at once, the batch in flight finishes
// and is accepted, and what another member handles afterwards completes
// the topic, nothing dead-lettered.
func TestShareShutdownReleasesUnstarted(t *testing.T) {
	c := startShareCluster(t, 1, 5)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 100, nil)
	var log sharedLog
	cfg := shareConfig(t, c, map[string]string{"BATCH_MAX_RECORDS": "5", "MAX_IN_FLIGHT_BATCHES": "4", "PARTITION_CONCURRENCY": "1"})
	slow := log.recorder("a")
	slow.slow = 100 * time.Millisecond
	a := start(t, cfg, slow)
	waitFor(t, 10*time.Second, "a batch handled", func() bool { return len(log.snapshot()) > 0 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	accepted := testutil.ToFloat64(a.metrics.ShareAcks.WithLabelValues(c.topic, metrics.AckAccept))
	released := testutil.ToFloat64(a.metrics.ShareAcks.WithLabelValues(c.topic, metrics.AckRelease))
	acquired := testutil.ToFloat64(a.metrics.ShareAcquired.WithLabelValues(c.topic))
	if released == 0 || accepted+released != acquired {
		t.Fatalf("got %v accepted and %v released of %v acquired, want every record acquired one or the other, some released", accepted, released, acquired)
	}
	if int(accepted) != len(log.snapshot()) {
		t.Fatalf("got %v accepted, want the %d handled", accepted, len(log.snapshot()))
	}
	b := start(t, cfg, log.recorder("b"))
	waitShareDone(t, c, cl, want, 30*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	_ = b.stop(t)
}

// TestShareIdempotencyStore: a share group goes through the idempotency
// store as a consumer group does: a record whose key was completed before
// is not handed to the handler again, and it is still accepted.
func TestShareIdempotencyStore(t *testing.T) {
	c := startShareCluster(t, 1, 5)
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ids := []string{"a", "b", "c", "a", "b", "d"} // two duplicates by message-id
	produceIDs(t, c, cl, 0, ids...)
	var log sharedLog
	mem := idempotency.NewMemory(time.Now)
	m := startIdem(t, shareConfig(t, c, nil), log.recorder("a"), idemGuard(c, mem, time.Minute))
	waitFor(t, 20*time.Second, "every record acknowledged", func() bool {
		o, ok := shareOffsets(t, c, cl)[0]
		return ok && shareSettled(o, int64(len(ids)))
	})
	seen := map[string]int{}
	for _, d := range log.snapshot() {
		seen[d.key]++
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if seen[strconv.Quote(id)] != 1 { // the handler's key is JSON
			t.Errorf("id %s handled %d times, want once", id, seen[strconv.Quote(id)])
		}
	}
	if got := testutil.ToFloat64(m.metrics.Records.WithLabelValues(c.topic, "duplicate")); got != 2 {
		t.Errorf("got %v duplicates, want 2", got)
	}
	if err := m.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.metrics.ShareAcks.WithLabelValues(c.topic, metrics.AckAccept)); got != float64(len(ids)) {
		t.Errorf("got %v accepted, want %d: duplicates are accepted too", got, len(ids))
	}
}

// TestShareRollingRestartAndCrashes: three members while records flow; each
// in turn is restarted (SIGTERM, then a new member), and between restarts
// one crashes holding records (no acknowledgement, as a SIGKILL leaves
// them) and is replaced. Every record is handled, none is dead-lettered:
// nothing is lost or archived unhandled, and no record got near the
// delivery limit.
func TestShareRollingRestartAndCrashes(t *testing.T) {
	c := startShareCluster(t, 3, 5)
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	var log sharedLog
	cfg := shareConfig(t, c, map[string]string{"BATCH_MAX_RECORDS": "10"})
	n := 0
	newMember := func() *member {
		n++
		r := log.recorder("m" + strconv.Itoa(n))
		r.slow = 5 * time.Millisecond
		return start(t, cfg, r)
	}
	ms := []*member{newMember(), newMember(), newMember()}
	want := produced{}
	add := func(p produced) {
		for part, rs := range p {
			want[part] = append(want[part], rs...)
		}
	}
	for i := range ms {
		add(produce(t, c, cl, 150, nil))
		handled := len(log.snapshot())
		waitFor(t, 30*time.Second, "records handled", func() bool { return len(log.snapshot()) > handled+30 })
		// A crash holding records: what it held is delivered again.
		victim := (i + 1) % len(ms)
		ms[victim].crash(t)
		ms[victim] = newMember()
		add(produce(t, c, cl, 150, nil))
		// A restart: SIGTERM, then a new member in its place.
		if err := ms[i].stop(t); err != nil {
			t.Fatal(err)
		}
		ms[i] = newMember()
	}
	waitShareDone(t, c, cl, want, 90*time.Second)
	handledOnce(t, log.snapshot(), want, nil)
	if n := len(readDLQ(t, c, 0)); n != 0 {
		t.Fatalf("got %d dead letters, want none", n)
	}
	for _, m := range ms {
		if err := m.stop(t); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShareStartWaitsForTheCoordinator: a share coordinator still loading
// (COORDINATOR_NOT_AVAILABLE, as a fresh Apache Kafka answers the first
// share group for a moment) delays KAFKA_START_OFFSET instead of dropping
// it: the records written before the member started are handled, not
// skipped by the group's own share.auto.offset.reset (latest).
func TestShareStartWaitsForTheCoordinator(t *testing.T) {
	c := startShareCluster(t, 1, 5)
	if c.kf == nil {
		t.Skip("injects the coordinator's errors with kfake")
	}
	cl := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	want := produce(t, c, cl, 50, nil)
	// The group's error in the answer, as Apache Kafka gives it, for
	// longer than the client's own retries of the request.
	var answered atomic.Int32
	c.kf.ControlKey(int16(kmsg.DescribeShareGroupOffsets), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.kf.KeepControl()
		if answered.Add(1) > 12 { // the client gives up after about 10
			return nil, nil, false
		}
		req := kr.(*kmsg.DescribeShareGroupOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			rg.GroupID, rg.ErrorCode = g.GroupID, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	var log sharedLog
	m := start(t, shareConfig(t, c, map[string]string{"KAFKA_START_OFFSET": "earliest"}), log.recorder("a"))
	waitFor(t, 90*time.Second, "every record handled", func() bool { return len(log.snapshot()) >= want.total() })
	handledOnce(t, log.snapshot(), want, nil)
	if err := m.stop(t); err != nil {
		t.Fatal(err)
	}
}
