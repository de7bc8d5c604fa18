package consume

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactions: records of aborted transactions are never delivered
// (read_committed), and a consumer behind an open transaction waits at the
// last stable offset: records after it, transactional or not, come only
// once the transaction ends.
func TestTransactions(t *testing.T) {
	c := startCluster(t, 1)
	plain := newClient(t, c, kgo.DefaultProduceTopic(c.topic))
	tx := newClient(t, c, kgo.DefaultProduceTopic(c.topic), kgo.TransactionalID("tx-"+c.topic))
	ctx := context.Background()

	txn := func(prefix string, n int, commit bool) {
		t.Helper()
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			r := &kgo.Record{Key: fmt.Appendf(nil, "%s-%d", prefix, i), Value: fmt.Appendf(nil, `{"n":%d}`, i)}
			if err := tx.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if commit {
			if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := func(log *sharedLog) map[string]int {
		out := map[string]int{}
		for _, d := range log.snapshot() {
			out[strings.Trim(d.key, `"`)]++ // the key as decoded: a JSON string
		}
		return out
	}

	txn("committed", 10, true)
	txn("aborted", 10, false)
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	txn("open", 5, false) // left open for now
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("after-open"), Value: []byte(`{"n":0}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var log sharedLog
	m := start(t, c.config(t, map[string]string{"BATCH_MAX_WAIT": "50ms"}), log.recorder("a"))
	waitFor(t, 20*time.Second, "the committed transaction's 10 records", func() bool { return len(log.snapshot()) >= 10 })
	time.Sleep(time.Second) // what the open transaction holds back stays back
	got := keys(&log)
	for k := range got {
		if !strings.HasPrefix(k, "committed-") {
			t.Fatalf("delivered %q while the transaction before it is open (or aborted); got %v", k, got)
		}
	}

	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the open transaction's records and the one after it", func() bool { return len(keys(&log)) == 16 })
	got = keys(&log)
	for i := range 10 {
		if got[fmt.Sprintf("aborted-%d", i)] != 0 {
			t.Fatalf("aborted-%d delivered", i)
		}
	}
	for _, k := range []string{"open-0", "open-4", "after-open", "committed-9"} {
		if got[k] != 1 {
			t.Fatalf("%s delivered %d times, want once; got %v", k, got[k], got)
		}
	}
	if err := m.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
