package consume

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/dlq"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
)

// stuckOn is a handler that never returns for batches of one partition
// (it ignores its context, as a handler blocked in a call without a
// deadline does) until released, and hands the others to next.
type stuckOn struct {
	partition int32
	next      handler.Handler
	release   chan struct{}
	once      sync.Once
	entered   chan struct{} // closed when the first stuck batch arrives
	enterOnce sync.Once
}

func newStuckOn(t *testing.T, partition int32, next handler.Handler) *stuckOn {
	s := &stuckOn{partition: partition, next: next, release: make(chan struct{}), entered: make(chan struct{})}
	t.Cleanup(s.free)
	return s
}

func (s *stuckOn) free() { s.once.Do(func() { close(s.release) }) }

func (s *stuckOn) Handle(ctx context.Context, b handler.Batch) error {
	if b.Partition == s.partition {
		s.enterOnce.Do(func() { close(s.entered) })
		<-s.release
	}
	return s.next.Handle(ctx, b)
}

// produceTo writes n records {"n":i,"pad":…} with size bytes of padding to
// one partition and returns them. Record batches are uncompressed and of
// 16 KiB, like a Java producer's default batch.size.
func produceTo(t *testing.T, c *cluster, partition int32, n int, size int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, c, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()))
	pad := strings.Repeat("x", size)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: c.topic, Partition: partition, Key: fmt.Appendf(nil, "k%d", i),
			Value: fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, pad)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestShutdownWithinBudgetCommitsFinishedPartitions: a worker stuck in a
// handler that ignores its context does not make the shutdown overrun
// SHUTDOWN_TIMEOUT, and the partitions whose work finished are committed.
// (Before: the final commit ran after the abandon grace with an expired
// context and committed nothing, and leaving the group waited for the stuck
// worker again.)
func TestShutdownWithinBudgetCommitsFinishedPartitions(t *testing.T) {
	c := startCluster(t, 2)
	var log sharedLog
	h := newStuckOn(t, 0, log.recorder("a"))
	m := start(t, c.config(t, map[string]string{"SHUTDOWN_TIMEOUT": "3s", "KAFKA_COMMIT_INTERVAL": "1h"}), h)
	healthy := produceTo(t, c, 1, 200, 10)
	produceTo(t, c, 0, 10, 10)
	<-h.entered
	waitFor(t, 20*time.Second, "partition 1 handled", func() bool {
		order, _ := firstDeliveries(log.snapshot())
		return len(order[1]) == len(healthy)
	})

	start := time.Now()
	_ = m.stop(t)
	if took, budget := time.Since(start), 3*time.Second+time.Second; took > budget {
		t.Fatalf("shutdown took %v, want at most SHUTDOWN_TIMEOUT + 1s = %v", took, budget)
	}
	cl := newClient(t, c)
	got := committed(t, c, cl)
	if want := healthy[len(healthy)-1].Offset + 1; got[1] != want {
		t.Fatalf("partition 1 committed at %d, want %d (everything handled)", got[1], want)
	}
	if o, ok := got[0]; ok && o != 0 {
		t.Fatalf("partition 0 committed at %d, want nothing past its stuck first batch", o)
	}
}

// TestSignalDuringRevokeKeepsTheBudget: a SIGTERM that arrives while a
// revoke waits for a stuck worker (up to 80% of the rebalance timeout)
// shortens the wait: the process still exits within SHUTDOWN_TIMEOUT plus a
// second of the signal.
func TestSignalDuringRevokeKeepsTheBudget(t *testing.T) {
	c := startCluster(t, 2)
	var log sharedLog
	h := newStuckOn(t, 1, log.recorder("a"))
	cfg := c.config(t, map[string]string{"SHUTDOWN_TIMEOUT": "3s", "KAFKA_REBALANCE_TIMEOUT": "60s"})
	a := start(t, cfg, h)
	waitFor(t, 20*time.Second, "member a to own both partitions", func() bool { return len(a.c.owned()) == 2 })
	produceTo(t, c, 1, 5, 10)
	produceTo(t, c, 0, 5, 10)
	<-h.entered
	// A second member makes a revoke one of a's partitions; whichever
	// it is, the revoke of partition 1 or the shutdown waits on it.
	start(t, cfg, log.recorder("b"))
	waitFor(t, 20*time.Second, "a revoke to begin", func() bool { return len(a.c.owned()) < 2 })
	time.Sleep(500 * time.Millisecond)

	begin := time.Now()
	_ = a.stop(t)
	if took, budget := time.Since(begin), 3*time.Second+time.Second; took > budget {
		t.Fatalf("shutdown took %v, want at most SHUTDOWN_TIMEOUT + 1s = %v", took, budget)
	}
}

// TestOneStuckPartitionDoesNotStopTheOthers: a partition stuck on its
// handler fills only its share of MAX_BUFFERED_BYTES; the other partition
// keeps being fetched, handled and committed, and the stuck one's lag keeps
// growing while its fetching is paused.
func TestOneStuckPartitionDoesNotStopTheOthers(t *testing.T) {
	c := startCluster(t, 2)
	var log sharedLog
	h := newStuckOn(t, 0, log.recorder("a"))
	m := start(t, c.config(t, map[string]string{"MAX_BUFFERED_BYTES": "65536", "BATCH_MAX_BYTES": "16384", "BATCH_MAX_RECORDS": "20"}), h)
	stuck := produceTo(t, c, 0, 500, 1000)
	<-h.entered
	flowing := produceTo(t, c, 1, 500, 1000)
	waitFor(t, 30*time.Second, "partition 1 handled while partition 0 is stuck", func() bool {
		order, _ := firstDeliveries(log.snapshot())
		return len(order[1]) == len(flowing)
	})
	cl := newClient(t, c)
	waitFor(t, 10*time.Second, "partition 1 committed", func() bool {
		return committed(t, c, cl)[1] == flowing[len(flowing)-1].Offset+1
	})
	if got := m.c.flow.buffered(); got > 2*65536 {
		t.Fatalf("buffered %d bytes with partition 0 stuck, want at most %d", got, 2*65536)
	}
	// The stuck partition is paused; what is written to it now is seen
	// only through the refreshed end offsets.
	more := produceTo(t, c, 0, 100, 10)
	want := float64(more[len(more)-1].Offset + 1) // nothing committed on partition 0
	waitFor(t, 10*time.Second, "the stuck partition's lag to include the records written since", func() bool {
		return testutil.ToFloat64(m.metrics.LagFor(c.topic, 0)) == want
	})
	_ = stuck
}

// TestLargeUndecodableRecordDeadLettered: a record close to 1 MB that cannot
// be decoded is dead-lettered although its copy, with the dead-letter
// headers, exceeds the client's default 1,000,012-byte batch limit: the
// producer is sized from the dead-letter topic's max.message.bytes.
func TestLargeUndecodableRecordDeadLettered(t *testing.T) {
	c := startCluster(t, 1)
	cl := newClient(t, c, kgo.ProducerBatchMaxBytes(2<<20))
	value := []byte("not json" + strings.Repeat("x", 1_000_000))
	p := produce(t, c, cl, 3, func(i int) []byte {
		if i == 1 {
			return value
		}
		return nil
	})
	var log sharedLog
	start(t, c.config(t, nil), log.recorder("a"))
	dead := readDLQ(t, c, 1)
	if len(dead[0].Value) != len(value) || header(dead[0], dlq.HeaderValueOmitted) != "" {
		t.Fatalf("dead letter: %d value bytes, %s=%q; want the whole value", len(dead[0].Value), dlq.HeaderValueOmitted, header(dead[0], dlq.HeaderValueOmitted))
	}
	checkCommittedAtEnd(t, c, cl, p)
}

// TestDLQCopyTooLargeForTheTopicOmitsValue: where the dead-letter topic's
// max.message.bytes cannot take the copy, it is written without its value
// and with dlq.value.omitted, rather than holding the partition forever.
func TestDLQCopyTooLargeForTheTopicOmitsValue(t *testing.T) {
	c := startCluster(t, 1)
	adm := kadm.NewClient(newClient(t, c))
	limit := "20000"
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, c.dlq); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, c)
	value := []byte("not json" + strings.Repeat("x", 19_950))
	p := produce(t, c, cl, 3, func(i int) []byte {
		if i == 1 {
			return value
		}
		return nil
	})
	var log sharedLog
	start(t, c.config(t, nil), log.recorder("a"))
	dead := readDLQ(t, c, 1)
	if dead[0].Value != nil || header(dead[0], dlq.HeaderValueOmitted) != strconv.Itoa(len(value)) || header(dead[0], dlq.HeaderKind) != "decode" {
		t.Fatalf("dead letter: %d value bytes, %s=%q; want no value and %d", len(dead[0].Value),
			dlq.HeaderValueOmitted, header(dead[0], dlq.HeaderValueOmitted), len(value))
	}
	checkCommittedAtEnd(t, c, cl, p)
}

// TestCompactedDLQRefused: a compacted dead-letter topic would reject the
// copy of any record without a key forever; the service refuses it at
// start, saying why.
func TestCompactedDLQRefused(t *testing.T) {
	c := startCluster(t, 1)
	adm := kadm.NewClient(newClient(t, c))
	compact := "compact"
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "cleanup.policy", Value: &compact}}, c.dlq); err != nil {
		t.Fatal(err)
	}
	m := start(t, c.config(t, nil), handler.Discard{})
	err := runErr(t, m)
	var fe *FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "cleanup.policy=compact") || !strings.Contains(err.Error(), c.dlq) {
		t.Fatalf("got %v, want a FatalError naming %s and its cleanup.policy", err, c.dlq)
	}
}

// runErr waits for Run to return on its own and returns its error.
func runErr(t *testing.T, m *member) error {
	t.Helper()
	select {
	case err := <-m.done:
		close(m.done)
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return on its own within 30s")
		return nil
	}
}

// TestMissingTopicNeverJoins: a member whose topic is missing exits before
// joining the group, so that crash-looping it does not rebalance the
// healthy members on every restart.
func TestMissingTopicNeverJoins(t *testing.T) {
	c := startClusterWith(t, 1, false)
	m := start(t, c.config(t, nil), handler.Discard{})
	var missing *MissingTopicsError
	if err := runErr(t, m); !errors.As(err, &missing) {
		t.Fatalf("got %v, want a MissingTopicsError", err)
	}
	groups, err := kadm.NewClient(newClient(t, c)).DescribeGroups(context.Background(), c.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatal(err)
	}
	if g, ok := groups[c.group]; ok && g.Err == nil && g.State != "Dead" {
		t.Fatalf("group %s exists in state %q: the member joined before it exited", c.group, g.State)
	}
}

// TestStartupTimeout: a service that cannot reach its brokers, reaches them
// with the wrong TLS setting, or cannot join its group exits with a
// *StartupError naming what it waited for, the brokers and a hint, within
// STARTUP_TIMEOUT, instead of logging warnings forever while its health
// check says healthy.
func TestStartupTimeout(t *testing.T) {
	c := startCluster(t, 1)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	tests := []struct {
		name    string
		set     map[string]string
		block   bool // refuse every JoinGroup (kfake only)
		waiting string
		hint    string
	}{
		{"unreachable brokers", map[string]string{"KAFKA_BROKERS": closed}, false, "reaching the brokers", "check KAFKA_BROKERS"},
		{"TLS against a plaintext listener", map[string]string{"KAFKA_TLS": "true"}, false, "reaching the brokers", "KAFKA_TLS=true against a plaintext listener"},
		{"group never joined", nil, true, "joining consumer group", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.block {
				if c.kf == nil {
					t.Skip("refusing JoinGroup needs kfake's request control; the real broker tier covers the other cases")
				}
				c.kf.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
					c.kf.KeepControl()
					return nil, errors.New("refused"), true
				})
				t.Cleanup(c.kf.DropControl)
			}
			set := map[string]string{"STARTUP_TIMEOUT": "2s"}
			for k, v := range tt.set {
				set[k] = v
			}
			cfg := c.config(t, set)
			begin := time.Now()
			m := start(t, cfg, handler.Discard{})
			err := runErr(t, m)
			took := time.Since(begin)
			var se *StartupError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *StartupError", err)
			}
			msg := err.Error()
			t.Logf("%s: %s", took, msg)
			for _, want := range []string{"STARTUP_TIMEOUT (2s)", "still " + tt.waiting, "KAFKA_BROKERS=" + strings.Join(cfg.Kafka.Brokers, ","), tt.hint} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if took > 10*time.Second {
				t.Errorf("returned after %v, want soon after STARTUP_TIMEOUT (2s)", took)
			}
		})
	}
}

// TestStartupPlaintextAgainstTLSListener: KAFKA_TLS=false against a TLS
// listener is diagnosed as such.
func TestStartupPlaintextAgainstTLSListener(t *testing.T) {
	pki := kafkaclienttest.NewPKI(t)
	kf := kafkaclienttest.StartCluster(t, pki.ServerTLS(false), topic, dlqTopic)
	cfg := testConfig(t, kf, map[string]string{"STARTUP_TIMEOUT": "2s", "KAFKA_TLS": "false"})
	m := start(t, cfg, handler.Discard{})
	err := runErr(t, m)
	var se *StartupError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "a TLS listener reached with KAFKA_TLS=false") {
		t.Fatalf("got %v, want a *StartupError diagnosing a TLS listener", err)
	}
}

// TestStartupTimeoutNotHitByIdleMember: a member that joins but gets no
// partition (more members than partitions) has started.
func TestStartupTimeoutNotHitByIdleMember(t *testing.T) {
	c := startCluster(t, 1)
	cfg := c.config(t, map[string]string{"STARTUP_TIMEOUT": "3s"})
	a := start(t, cfg, handler.Discard{})
	waitFor(t, 20*time.Second, "a to own the partition", func() bool { return len(a.c.owned()) == 1 })
	b := start(t, cfg, handler.Discard{})
	time.Sleep(5 * time.Second)
	for name, m := range map[string]*member{"a": a, "b": b} {
		select {
		case err := <-m.done:
			t.Fatalf("member %s stopped: %v", name, err)
		default:
		}
	}
}
