package kafkaclient

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/internal/kafkaclient/kafkaclienttest"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

const (
	testRegion   = kafkaclienttest.Region
	testKeyID    = kafkaclienttest.KeyID
	testSecret   = kafkaclienttest.Secret
	testRoleARN  = kafkaclienttest.RoleARN
	stsKeyID     = kafkaclienttest.STSKeyID
	stsSecret    = kafkaclienttest.STSSecret
	stsSession   = kafkaclienttest.STSSession
	saslUser     = "consumer"
	saslPassword = "s3cret-Pa55word-for-tests"
	topic        = "orders"
	dlqTopic     = "orders.dlq"
	group        = "orders-test"
)

// authConfig is a valid configuration for c with the given overrides.
func authConfig(t *testing.T, c *kfake.Cluster, set map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"KAFKA_BROKERS":  strings.Join(c.ListenAddrs(), ","),
		"KAFKA_TOPICS":   topic,
		"KAFKA_GROUP_ID": group,
		"KAFKA_AUTH":     "none",
	}
	for k, v := range set {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("invalid test configuration: %v", err)
	}
	return cfg
}

// authClient is a kgo client from the service's client options for k, with
// extra options, counted on m and logged to cp.
func authClient(t *testing.T, k config.Kafka, m *metrics.Metrics, cp *kafkaclienttest.Capture, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, err := Options(k, Deps{Metrics: m, Logger: cp.Log})
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, cp.KgoLogger())
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n JSON records {"n":i} keyed "k<i>" to the source topic.
func produce(t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads the source topic from the start until it has want
// records, and returns how many it read.
func consumeAll(t *testing.T, cl *kgo.Client, want int, timeout time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := map[[2]int64]bool{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records, want %d (timed out)", len(seen), want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { seen[[2]int64{int64(r.Partition), r.Offset}] = true })
	}
	return len(seen)
}

func iamEnv(pki *kafkaclienttest.PKI) map[string]string {
	return map[string]string{
		"KAFKA_AUTH":        "iam",
		"AWS_REGION":        testRegion,
		"KAFKA_TLS_CA_FILE": pki.CAFile,
	}
}
