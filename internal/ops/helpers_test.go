package ops

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster is where a test runs: an in-process kfake cluster, or the real
// Apache Kafka named by KAFKA_TEST_BROKERS (scripts/kafka/up.sh). Topics
// and groups get names of their own per test, so both run the same way.
type cluster struct {
	addrs []string
	kf    *kfake.Cluster // nil on a real broker
	cl    *kgo.Client
	adm   *kadm.Client
	name  string
}

var seq atomic.Int64

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if seeds := os.Getenv("KAFKA_TEST_BROKERS"); seeds != "" {
		c := connect(t, &cluster{addrs: strings.Split(seeds, ",")})
		if os.Getenv("KAFKA_TEST_GROUP_PROTOCOL") == "consumer" && !serves848(t, c.adm) {
			// franz-go would fall back to the classic protocol: a KIP-848
			// tier that passed here would claim coverage it lacks.
			t.Fatal("KAFKA_TEST_GROUP_PROTOCOL=consumer, but the broker does not serve KIP-848 (ConsumerGroupHeartbeat v1, Kafka 4.0+)")
		}
		return c
	}
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	return startClusterAt(t, kf)
}

// startClusterAt is startCluster on a kfake cluster of the test's own.
func startClusterAt(t *testing.T, kf *kfake.Cluster) *cluster {
	t.Helper()
	return connect(t, &cluster{kf: kf, addrs: kf.ListenAddrs()})
}

func connect(t *testing.T, c *cluster) *cluster {
	t.Helper()
	// Records are produced to the partition they name.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c.cl, c.adm = cl, kadm.NewClient(cl)
	c.name = strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()) + "-" +
		strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(seq.Add(1), 36)
	return c
}

// sub is c for a subtest: names of its own.
func (c *cluster) sub(t *testing.T) *cluster {
	s := *c
	s.name = c.name + "-" + strconv.FormatInt(seq.Add(1), 36)
	return &s
}

// opts are the client options a command would get from kafkaclient.Options.
func (c *cluster) opts() []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(c.addrs...)} }

// topic creates a topic named after the test and deletes it at the end.
func (c *cluster) topic(t *testing.T, suffix string, parts int32, configs map[string]*string) string {
	t.Helper()
	name := c.name + suffix
	ctx := context.Background()
	if _, err := c.adm.CreateTopic(ctx, parts, 1, configs, name); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.adm.DeleteTopics(context.Background(), name) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		td, err := c.adm.ListTopics(ctx, name)
		if err == nil && td[name].Err == nil && len(td[name].Partitions) == int(parts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s not in metadata after 10s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return name
}

// group returns a group name of the test's own, deleted at the end.
func (c *cluster) group(t *testing.T, suffix string) string {
	name := c.name + suffix
	t.Cleanup(func() { _, _ = c.adm.DeleteGroup(context.Background(), name) })
	return name
}

// produce writes rs and fails the test on any error.
func (c *cluster) produce(t *testing.T, rs ...*kgo.Record) {
	t.Helper()
	if err := c.cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every record of topic up to its end offsets as of now.
func (c *cluster) readAll(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for int64(len(out)) < want {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), want, topic)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// serves848 reports whether a broker serves KIP-848's ConsumerGroupHeartbeat v1.
func serves848(t *testing.T, adm *kadm.Client) bool {
	t.Helper()
	vs, err := adm.ApiVersions(context.Background())
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
