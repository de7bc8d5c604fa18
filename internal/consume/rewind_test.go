package consume

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/msk-consumer/msk-consumer/handler"
)

// holdOffset holds the first delivery of one offset (ignoring its context)
// until released.
type holdOffset struct {
	offset  int64
	next    handler.Handler
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	free    sync.Once
	// mixed counts batches whose offsets do not grow: records delivered
	// before a rewind and after it, handed over together.
	mixed atomic.Int64
}

func (h *holdOffset) unblock() { h.free.Do(func() { close(h.release) }) }

func (h *holdOffset) Handle(ctx context.Context, b handler.Batch) error {
	for i := 1; i < len(b.Records); i++ {
		if b.Records[i].Raw.Offset <= b.Records[i-1].Raw.Offset {
			h.mixed.Add(1)
			break
		}
	}
	for _, r := range b.Records {
		if r.Raw.Offset == h.offset {
			first := false
			h.once.Do(func() { first = true; close(h.entered) })
			if first {
				<-h.release
			}
			break
		}
	}
	return h.next.Handle(ctx, b)
}

// TestRewoundPartition: the client may deliver offsets lower than ones it
// delivered before in the same assignment. A broker that lost data (an
// unclean leader election, a log truncated under a live member) answers a
// fetch OFFSET_OUT_OF_RANGE, or KIP-320's epoch validation finds the log
// shorter than the offset consumed; franz-go then resumes where
// ConsumeResetOffset says (KAFKA_START_OFFSET=earliest: the log start) or at
// the new log end, below what it delivered. kfake's fault stands for that
// broker here: one fetch at the end answered OFFSET_OUT_OF_RANGE, while a
// batch in the middle is held. Every record must then be handled and
// committed, the commit never past an unfinished record, and nothing left
// tracked or buffered: the partition must not stall for good. The records
// still queued from before the rewind are dropped with it: a batch never
// mixes them with the records delivered again (whose offsets they share,
// so that an answer naming an offset, or an idempotency key made of one,
// would take one for the other). Batches of 7 do not line up with the
// rewind; batches of 10 do.
func TestRewoundPartition(t *testing.T) {
	for _, n := range []string{"10", "7"} {
		t.Run("batches of "+n, func(t *testing.T) { testRewoundPartition(t, n) })
	}
}

func testRewoundPartition(t *testing.T, batchRecords string) {
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.SeedTopics(2, dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	c := &cluster{addrs: kf.ListenAddrs(), topic: topic, dlq: dlqTopic, group: group, kf: kf}
	cl := newClient(t, c)
	first := produce(t, c, cl, 100, nil)
	oor := kf.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Fetch}, Topic: topic, Partitions: []int32{0}, Err: kerr.OffsetOutOfRange,
		When: func(kreq kmsg.Request) bool {
			for _, rt := range kreq.(*kmsg.FetchRequest).Topics {
				for _, rp := range rt.Partitions {
					if rp.FetchOffset == 100 {
						return true
					}
				}
			}
			return false
		},
	})
	var log sharedLog
	h := &holdOffset{offset: 60, next: log.recorder("a"), entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.unblock)
	m := start(t, testConfig(t, kf, map[string]string{"BATCH_MAX_RECORDS": batchRecords}), h)
	<-h.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := oor.Wait(ctx, 1); err != nil {
		t.Fatalf("no fetch at offset 100 answered OFFSET_OUT_OF_RANGE: %v", err)
	}
	// The client resumed at the log start: offsets 0 to 99 arrive again
	// while 60 is held.
	waitFor(t, 20*time.Second, "the records delivered again to be queued", func() bool {
		for _, p := range m.c.owned() {
			p.mu.Lock()
			n := p.offs.track.len()
			p.mu.Unlock()
			if n >= 100 {
				return true
			}
		}
		return false
	})
	time.Sleep(500 * time.Millisecond)
	if got := committed(t, c, cl)[0]; got > 60 {
		t.Fatalf("committed %d while offset 60 is held, past an unfinished record", got)
	}
	h.unblock()
	more := produce(t, c, cl, 50, nil)
	all := produced{0: append(append([]*kgo.Record(nil), first[0]...), more[0]...)}
	checkCommittedAtEnd(t, c, cl, all)
	checkDelivered(t, all, log.snapshot(), nil)
	waitFor(t, 10*time.Second, "nothing left tracked or buffered", func() bool {
		for _, p := range m.c.owned() {
			p.mu.Lock()
			n := p.offs.track.len()
			p.mu.Unlock()
			if n != 0 {
				return false
			}
		}
		return m.c.flow.buffered() == 0
	})
	if n := h.mixed.Load(); n > 0 {
		t.Fatalf("%d batches mixed records delivered before and after the rewind", n)
	}
}

// TestTrackerRewind: after the client rewinds below offsets it delivered,
// the records delivered before and again at the same offsets are not taken
// for each other; the ones delivered before that were not finished still
// give back their bytes when they finish, but never move the prefix.
func TestTrackerRewind(t *testing.T) {
	var tr tracker
	old := map[int64]*kgo.Record{}
	for off := int64(10); off < 20; off++ {
		old[off] = &kgo.Record{Offset: off, LeaderEpoch: 1}
		if _, rewound := tr.push(old[off]); rewound {
			t.Fatalf("push(%d): rewound while offsets grow", off)
		}
	}
	for _, off := range []int64{10, 11, 16} {
		tr.finish(old[off])
	}
	// Truncated at 14: 14 to 19 are gone, 12 and 13 remain.
	again := map[int64]*kgo.Record{}
	for off := int64(14); off < 18; off++ {
		again[off] = &kgo.Record{Offset: off, LeaderEpoch: 2}
		dropped, rewound := tr.push(again[off])
		if want := off == 14; rewound != want {
			t.Fatalf("push(%d) again: rewound %v, want %v", off, rewound, want)
		}
		if off == 14 && dropped != 6 {
			t.Fatalf("push(14) again: dropped %d entries, want 6 (14 to 19)", dropped)
		}
	}
	steps := []struct {
		name   string
		r      *kgo.Record
		wantOK bool
		wantN  int
		end    int64
	}{
		{"an orphan finishes: no prefix", old[15], true, 0, 0},
		{"the orphan again", old[15], false, 0, 0},
		{"finished before the rewind", old[16], false, 0, 0},
		{"the new 14 is not the old one", again[14], true, 0, 0},
		{"old 12 closes up to the new 14", old[12], true, 1, 13},
		{"old 13", old[13], true, 2, 15},
		{"an orphan past the prefix", old[17], true, 0, 0},
		{"new 15 to 17", again[15], true, 1, 16},
		{"new 16", again[16], true, 1, 17},
		{"new 17", again[17], true, 1, 18},
		{"the last orphans", old[14], true, 0, 0},
	}
	for _, s := range steps {
		ok, n, last := tr.finish(s.r)
		if ok != s.wantOK || n != s.wantN || (n > 0 && last.off+1 != s.end) {
			t.Fatalf("%s: finish(%d) got ok %v, n %d, end %d; want %v, %d, %d", s.name, s.r.Offset, ok, n, last.off+1, s.wantOK, s.wantN, s.end)
		}
	}
	for _, off := range []int64{18, 19} {
		if ok, _, _ := tr.finish(old[off]); !ok {
			t.Fatalf("orphan %d: not tracked", off)
		}
	}
	if tr.len() != 0 || len(tr.orphans) != 0 {
		t.Fatalf("left tracked: %d entries, %d orphans", tr.len(), len(tr.orphans))
	}
}
