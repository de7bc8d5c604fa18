package consume

import (
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// pauses records what flow asked the client.
type pauses struct {
	mu     sync.Mutex
	paused map[int32]bool
}

func (c *pauses) PauseFetchPartitions(m map[string][]int32) map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			c.paused[p] = true
		}
	}
	return nil
}

func (c *pauses) ResumeFetchPartitions(m map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			c.paused[p] = false
		}
	}
}

func (c *pauses) is(p int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused[p]
}

func testFlow(limit int64, slots int) (*flow, *pauses, *partition) {
	cl := &pauses{paused: map[int32]bool{}}
	f := newFlow(limit, slots, cl, prometheus.NewGauge(prometheus.GaugeOpts{Name: "b"}))
	p := &partition{topic: "t", id: 0}
	f.attach(p)
	return f, cl, p
}

// TestFlowReleaseOnce: a batch's release gives back its slot and its bytes
// exactly once, however often it is called, and resumes fetching.
func TestFlowReleaseOnce(t *testing.T) {
	f, cl, p := testFlow(1000, 1)
	f.add(p, 600)
	f.add(p, 600)
	if !cl.is(0) {
		t.Fatal("not paused at 1200 bytes held of a 1000-byte share")
	}
	r1, ok := f.acquire(context.Background(), nil, p, 600)
	if !ok {
		t.Fatal("acquire failed with a free slot")
	}
	r1()
	r1()
	if got := f.buffered(); got != 600 {
		t.Fatalf("buffered after releasing one batch twice: got %d, want 600", got)
	}
	if cl.is(0) {
		t.Fatal("still paused below the share")
	}
	r2, ok := f.acquire(context.Background(), nil, p, 600)
	if !ok {
		t.Fatal("the slot was not given back")
	}
	r2()
	if got := f.buffered(); got != 0 {
		t.Fatalf("buffered: got %d, want 0", got)
	}
}

// TestFlowResumesBelowThreeQuarters: a paused partition resumes only once
// it holds less than three quarters of its share, not as soon as it is
// under it, so that it is not paused again by the next fetch.
func TestFlowResumesBelowThreeQuarters(t *testing.T) {
	f, cl, p := testFlow(1000, 1)
	for _, step := range []struct {
		add    int64
		paused bool
	}{
		{1000, true}, // at the share
		{-200, true}, // 800: under the share, over three quarters
		{-60, false}, // 740
		{50, false},  // 790: under the share
		{250, true},  // 1040
	} {
		f.add(p, step.add)
		if got := cl.is(0); got != step.paused {
			t.Fatalf("at %d bytes of a 1000-byte share: paused %v, want %v", f.buffered(), got, step.paused)
		}
	}
}

// TestFlowAcquireGivenUp: a worker stopped or canceled while it waits for
// a slot gives back its batch's bytes, so fetching does not stay paused.
func TestFlowAcquireGivenUp(t *testing.T) {
	for _, tt := range []struct {
		name string
		stop func(cancel context.CancelFunc, halt chan struct{})
	}{
		{"halted", func(_ context.CancelFunc, halt chan struct{}) { close(halt) }},
		{"canceled", func(cancel context.CancelFunc, _ chan struct{}) { cancel() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, cl, p := testFlow(1000, 1)
			busy, _ := f.acquire(context.Background(), nil, p, 0) // the only slot
			defer busy()
			f.add(p, 1500)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			halt := make(chan struct{})
			tt.stop(cancel, halt)
			if release, ok := f.acquire(ctx, halt, p, 1500); ok || release != nil {
				t.Fatal("acquired a slot that was taken")
			}
			if got := f.buffered(); got != 0 || cl.is(0) {
				t.Fatalf("after giving up: buffered %d, paused %v; want 0, false", got, cl.is(0))
			}
		})
	}
}
