package consume

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// emptyFetches counts the fetch responses that carried no partition at
// all (a response header, a session ID and an empty topic array: about 21
// bytes) while records were still to be fetched.
type emptyFetches struct {
	want  int64
	empty atomic.Int64
	n     atomic.Int64
}

func (e *emptyFetches) OnFetchRecordBuffered(*kgo.Record) { e.n.Add(1) }

func (e *emptyFetches) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, m kgo.BrokerE2E) {
	if key == 1 && m.ReadErr == nil && m.BytesRead > 0 && m.BytesRead < 64 && e.n.Load() < e.want {
		e.empty.Add(1)
	}
}

// TestPausedPartitionsDoNotStallFetching: flow pauses and resumes single
// partitions at their share of MAX_BUFFERED_BYTES. With fetch sessions
// (KIP-227) the client then sent incremental fetches that named no
// partition; the broker found nothing to send for them and held each for
// the fetch's max wait (5s by default) while the other partitions' records
// waited, and the pipeline ran at a fraction of its rate (issue 21: case 4
// at 1 KB fell from 0.62 to 0.07 × the ceiling). Every fetch now names the
// partitions it wants, so none comes back empty while records remain.
func TestPausedPartitionsDoNotStallFetching(t *testing.T) {
	c := startCluster(t, 6)
	cl := newClient(t, c)
	pad := strings.Repeat("x", 1000)
	p := produce(t, c, cl, 30000, func(i int) []byte { return fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad) })
	var log sharedLog
	h := log.recorder("a")
	h.slow = time.Millisecond
	hook := &emptyFetches{want: int64(p.total())}
	// A budget of 48 KiB over 6 partitions: each pauses at 8 KiB, every
	// few records, as a partition behind a slow handler does.
	m := start(t, c.config(t, map[string]string{"MAX_BUFFERED_BYTES": "4194304", "BATCH_MAX_BYTES": "1048576", "BATCH_MAX_RECORDS": "100"}), h,
		kgo.WithHooks(hook), kgo.FetchMaxWait(250*time.Millisecond))
	defer func() { _ = m.stop(t) }()
	waitFor(t, 120*time.Second, "every record handled", func() bool {
		order, _ := firstDeliveries(log.snapshot())
		n := 0
		for _, o := range order {
			n += len(o)
		}
		return n == p.total()
	})
	if n := hook.empty.Load(); n > 0 {
		t.Fatalf("%d fetch responses named no partition while records were still to be fetched; want none", n)
	}
}
