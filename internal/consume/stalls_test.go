package consume

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// keyFor returns a key whose record goes to lane of lanes (key order) and
// whose dead-letter copy goes to dead-letter partition dlqPart of 2 (the
// producer's default partitioner hashes the key as Kafka's does).
func keyFor(t *testing.T, lane, lanes uint64, dlqPart int32) []byte {
	t.Helper()
	part := kgo.StickyKeyPartitioner(nil).ForTopic(dlqTopic)
	for i := range 10000 {
		k := fmt.Appendf(nil, "key-%d", i)
		if keyHash(k)%lanes == lane && part.Partition(&kgo.Record{Key: k}, 2) == int(dlqPart) {
			return k
		}
	}
	t.Fatal("no key found")
	return nil
}

// TestDeadLetterStallBelongsToTheLane: with key order, lane 0's copies go
// to a dead-letter partition that refuses writes while lane 1's go to one
// that takes them. Lane 1's successful writes must not clear lane 0's
// stall: /readyz turns 503 after UNREADY_AFTER naming lane 0, and stays so
// while lane 1's writes go on succeeding, until the partition is repaired.
func TestDeadLetterStallBelongsToTheLane(t *testing.T) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.SeedTopics(2, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	c := &cluster{addrs: kf.ListenAddrs(), topic: topic, dlq: dlqTopic, group: group, kf: kf}
	stuckKey, goodKey := keyFor(t, 0, 2, 0), keyFor(t, 1, 2, 1)
	broken := kf.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlqTopic, Partitions: []int32{0}, Err: kerr.NotEnoughReplicas, Count: -1})
	cl := newClient(t, c)
	poison := func(key []byte) {
		t.Helper()
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: key, Value: []byte("not json")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var log sharedLog
	m := start(t, testConfig(t, kf, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": "2", "UNREADY_AFTER": "2s", "BATCH_MAX_WAIT": "10ms",
	}), log.recorder("a"), kgo.RecordDeliveryTimeout(time.Second))
	waitFor(t, 20*time.Second, "the member to be ready", func() bool { ok, _ := m.health.Ready(); return ok })
	poison(stuckKey)
	waitFor(t, 20*time.Second, "a failed dead-letter write", func() bool {
		return testutil.ToFloat64(m.metrics.DLQProduceErrors) > 0
	})
	// Lane 1 dead-letters a record every 100ms, each written at once.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: goodKey, Value: []byte("not json")}).FirstErr(); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, 10*time.Second, "/readyz to turn 503 while lane 0's writes fail", func() bool {
		ok, _ := m.health.Ready()
		return !ok
	})
	if _, why := m.health.Ready(); !strings.Contains(why, "lane 0") || !strings.Contains(why, "dead-letter topic "+dlqTopic) {
		t.Fatalf("/readyz: %q; want lane 0 named, stuck on the dead-letter topic", why)
	}
	lettered := readDLQPartition(t, c, 1)
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if ok, why := m.health.Ready(); ok || !strings.Contains(why, "lane 0") {
			t.Fatalf("/readyz while lane 0's dead-letter partition refuses writes: ready %v, %q", ok, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := readDLQPartition(t, c, 1); n <= lettered {
		t.Fatalf("lane 1's copies: %d before, %d after 2s; want lane 1's writes to go on", lettered, n)
	}
	broken.Remove()
	waitFor(t, 20*time.Second, "/readyz to be 200 once the dead-letter partition takes writes", func() bool {
		ok, _ := m.health.Ready()
		return ok
	})
}

// readDLQPartition returns how many copies partition part of the
// dead-letter topic holds.
func readDLQPartition(t *testing.T, c *cluster, part int32) int64 {
	t.Helper()
	cl := newClient(t, c)
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), c.dlq)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(c.dlq, part)
	return o.Offset
}

// TestHungHandlerIsAStall: a Go handler call that does not return (it
// ignores its context) holds its lane forever; once it has been in flight
// for UNREADY_AFTER, /readyz answers 503 naming its topic, partition and
// lane, and consumer_oldest_batch_in_flight_seconds shows its age. Once it
// returns, the member is ready again.
func TestHungHandlerIsAStall(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c)
	var log sharedLog
	h := newHoldKey(t, "hold", log.recorder("a"))
	m := start(t, c.config(t, map[string]string{
		"PROCESSING_ORDER": "key", "PARTITION_CONCURRENCY": "2", "UNREADY_AFTER": "1s",
	}), h)
	waitFor(t, 20*time.Second, "the member to be ready", func() bool { ok, _ := m.health.Ready(); return ok })
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: c.topic, Key: []byte("hold"), Value: []byte(`{"n":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	<-h.entered
	lane := fmt.Sprintf("%s/0 lane %d", c.topic, keyHash([]byte("hold"))%2)
	waitFor(t, 10*time.Second, "/readyz to turn 503 on the call in flight", func() bool {
		ok, _ := m.health.Ready()
		return !ok
	})
	if _, why := m.health.Ready(); !strings.Contains(why, lane) || !strings.Contains(why, "has not returned") {
		t.Fatalf("/readyz: %q; want %s named, its handler call not returned", why, lane)
	}
	if age := testutil.ToFloat64(m.metrics.OldestBatchInFlight); age < 1 {
		t.Fatalf("consumer_oldest_batch_in_flight_seconds: %v, want at least UNREADY_AFTER (1s)", age)
	}
	h.unblock()
	waitFor(t, 10*time.Second, "/readyz to be 200 once the call returned", func() bool {
		ok, _ := m.health.Ready()
		return ok
	})
	if age := testutil.ToFloat64(m.metrics.OldestBatchInFlight); age != 0 {
		t.Fatalf("consumer_oldest_batch_in_flight_seconds with nothing in flight: %v, want 0", age)
	}
}
