package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/service"
)

// memStore keeps the orders it is given.
type memStore struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *memStore) Put(_ context.Context, orders []Order) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range orders {
		s.ids[o.ID]++
	}
	return nil
}

func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// TestOwnBinary runs the service as this module's main does, through the
// public API only, against an in-process broker: every valid order reaches
// the store, the invalid one goes to the dead-letter topic, and canceling
// the context stops it cleanly (exit 0) with every offset committed.
func TestOwnBinary(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"), kfake.SeedTopics(1, "orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 100
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf(`{"id":"o-%d","amount":%d.5,"currency":"EUR"}`, i, i+1)
		if i == 42 {
			v = `{"id":"o-42","amount":-1,"currency":"EUR"}` // invalid
		}
		recs = append(recs, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "o-%d", i), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	store := &memStore{ids: map[string]int{}}
	env := map[string]string{
		"KAFKA_BROKERS":         brokers,
		"KAFKA_TOPICS":          "orders",
		"KAFKA_GROUP_ID":        "own-binary-test",
		"KAFKA_AUTH":            "none",
		"KAFKA_COMMIT_INTERVAL": "100ms",
		"BATCH_MAX_WAIT":        "50ms",
		"HANDLER":               "orders",
		"METRICS_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":             "warn",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		exit <- service.Run(ctx, service.Env{
			Args:   []string{"run"},
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			Stdout: io.Discard,
			Stderr: &lockedWriter{w: &stderr},
		}, service.Handlers{
			"orders": func(handler.Deps) (handler.Handler, error) { return newOrders(store), nil },
		})
	}()

	deadline := time.Now().Add(30 * time.Second)
	for store.count() < n-1 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("stored %d orders within 30s, want %d", store.count(), n-1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	dead := readAll(t, cluster.ListenAddrs(), "orders.dlq", 1)
	if got := string(dead[0].Key); got != "o-42" {
		t.Errorf("dead letter: got key %q, want o-42", got)
	}
	for _, h := range dead[0].Headers {
		if h.Key == "dlq.error.kind" && string(h.Value) != "validation" {
			t.Errorf("dlq.error.kind: got %q, want validation", h.Value)
		}
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code: got %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the service did not stop within 40s of cancel")
	}
	if store.ids["o-42"] != 0 {
		t.Error("the invalid order was stored")
	}
	checkCommitted(t, cl, "own-binary-test", "orders")
}

// readAll reads want records from the start of topic.
func readAll(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want && ctx.Err() == nil {
		out = append(out, cl.PollFetches(ctx).Records()...)
	}
	if len(out) < want {
		t.Fatalf("%s: got %d records, want %d", topic, len(out), want)
	}
	return out
}

// checkCommitted checks that the group committed every partition of topic
// to its end.
func checkCommitted(t *testing.T, cl *kgo.Client, group, topic string) {
	t.Helper()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		c, _ := committed.Lookup(topic, e.Partition)
		if c.At != e.Offset {
			t.Errorf("partition %d: committed %d, want %d (its end)", e.Partition, c.At, e.Offset)
		}
	})
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
