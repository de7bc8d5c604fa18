package consume

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// requestCounter counts the requests the client writes, by API key.
type requestCounter struct{ n [128]atomic.Int64 }

func (rc *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && int(key) < len(rc.n) {
		rc.n[key].Add(1)
	}
}

var _ kgo.HookBrokerWrite = (*requestCounter)(nil)

// need848 skips the test on a real broker that does not serve KIP-848
// (ConsumerGroupHeartbeat v1: Kafka 4.0+), where franz-go would fall back
// to the classic protocol. With KAFKA_TEST_GROUP_PROTOCOL=consumer
// (make test-kafka-848) realCluster has failed the test already.
func need848(t *testing.T, c *cluster) {
	t.Helper()
	if c.kf == nil && !serves848(t, c) {
		t.Skip("the broker does not serve KIP-848 (ConsumerGroupHeartbeat v1, Kafka 4.0+)")
	}
}

// serves848 reports whether a broker of the real cluster serves KIP-848.
func serves848(t *testing.T, c *cluster) bool {
	t.Helper()
	vs, err := c.adm.ApiVersions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	vs.Each(func(v kadm.BrokerApiVersions) {
		if mx, has := v.KeyMaxVersion(int16(kmsg.ConsumerGroupHeartbeat)); has && mx >= 1 {
			ok = true
		}
	})
	return ok
}

// TestGroupProtocolConsumer: with KAFKA_GROUP_PROTOCOL=consumer the members
// join with KIP-848's ConsumerGroupHeartbeat (never JoinGroup), the broker
// assigns the partitions, and a member joining and one leaving while
// records flow lose nothing and, with graceful revokes, duplicate nothing.
func TestGroupProtocolConsumer(t *testing.T) {
	c := startCluster(t, 4)
	cl := newClient(t, c)
	need848(t, c)
	var log sharedLog
	cfg := c.config(t, map[string]string{"KAFKA_GROUP_PROTOCOL": "consumer", "BATCH_MAX_RECORDS": "20"})
	var reqs requestCounter
	newMember := func(name string) *member {
		r := log.recorder(name)
		r.slow = 2 * time.Millisecond
		return start(t, cfg, r, kgo.WithHooks(&reqs))
	}
	all := produced{}
	produceWhile := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			for part, rs := range produce(t, c, cl, 50, nil) {
				all[part] = append(all[part], rs...)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	a := newMember("a")
	produceWhile(time.Second)
	newMember("b")
	produceWhile(2 * time.Second)
	if err := a.stop(t); err != nil {
		t.Fatalf("a: %v", err)
	}
	produceWhile(time.Second)
	checkCommittedAtEnd(t, c, cl, all)

	deliveries := log.snapshot()
	checkAllDelivered(t, all, deliveries, nil)
	members := map[string]int{}
	for _, d := range deliveries {
		members[d.member]++
	}
	if len(members) != 2 {
		t.Fatalf("deliveries by member: got %v, want both to have worked", members)
	}
	if _, dups := firstDeliveries(deliveries); dups != 0 {
		t.Fatalf("got %d duplicates across graceful rebalances, want 0", dups)
	}
	if hb, jg := reqs.n[kmsg.ConsumerGroupHeartbeat].Load(), reqs.n[kmsg.JoinGroup].Load(); hb == 0 || jg != 0 {
		t.Fatalf("got %d ConsumerGroupHeartbeat and %d JoinGroup requests, want KIP-848 only", hb, jg)
	}
	t.Logf("%d records; deliveries by member %v; %d heartbeats", all.total(), members, reqs.n[kmsg.ConsumerGroupHeartbeat].Load())
}

// TestStaleMemberEpochOnCommitRetried: an offset commit answered
// STALE_MEMBER_EPOCH (KIP-848 before Kafka 4.3, KIP-1251) is neither fatal
// nor lost: the offsets stay marked and a later commit lands them.
func TestStaleMemberEpochOnCommitRetried(t *testing.T) {
	c := startCluster(t, 2)
	if c.kf == nil {
		t.Skip("injects the error with kfake")
	}
	cl := newClient(t, c)
	p := produce(t, c, cl, 500, nil)
	var stale atomic.Int32
	c.kf.ControlKey(int16(kmsg.OffsetCommit), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.kf.KeepControl()
		if stale.Load() >= 5 {
			return nil, nil, false
		}
		stale.Add(1)
		req := r.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.StaleMemberEpoch.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	var log sharedLog
	var m *metrics.Metrics
	mb := startWithMetrics(t, c.config(t, map[string]string{"KAFKA_GROUP_PROTOCOL": "consumer"}), log.recorder("a"),
		func(mm *metrics.Metrics) []kgo.Opt { m = mm; return nil })
	checkCommittedAtEnd(t, c, cl, p)
	checkAllDelivered(t, p, log.snapshot(), nil)
	if got := stale.Load(); got < 5 {
		t.Fatalf("got %d commits answered STALE_MEMBER_EPOCH, want 5", got)
	}
	if got := testutil.ToFloat64(m.Commits.WithLabelValues(metrics.OutcomeError)); got < 1 {
		t.Fatalf("commits counted as errors: got %v, want at least 1", got)
	}
	select {
	case err := <-mb.done:
		t.Fatalf("Run returned %v while commits were refused, want it running", err)
	default:
	}
	if err := mb.stop(t); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}
