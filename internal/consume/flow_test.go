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

// TestFlowReleaseOnce: a batch's release gives back its slot exactly
// once, however often it is called, and never touches the bytes held,
// which its records give back as they finish.
func TestFlowReleaseOnce(t *testing.T) {
	f, _, p := testFlow(1000, 2)
	f.add(p, 600)
	r1, ok := f.acquire(context.Background(), nil)
	if !ok {
		t.Fatal("acquire failed with a free slot")
	}
	r2, ok := f.acquire(context.Background(), nil)
	if !ok {
		t.Fatal("acquire failed with the second slot free")
	}
	r1()
	r1()
	// One slot is free again, not two: a third acquire succeeds, a
	// fourth would block.
	r3, ok := f.acquire(context.Background(), nil)
	if !ok {
		t.Fatal("the slot was not given back")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := f.acquire(ctx, nil); ok {
		t.Fatal("a slot given back twice: three batches hold two slots and a fourth got one")
	}
	r2()
	r3()
	if got := f.buffered(); got != 600 {
		t.Fatalf("buffered after releasing the slots: got %d, want 600 (bytes are the records' to give back)", got)
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
// a slot gets none, and the slot stays with its holder.
func TestFlowAcquireGivenUp(t *testing.T) {
	for _, tt := range []struct {
		name string
		stop func(cancel context.CancelFunc, halt chan struct{})
	}{
		{"halted", func(_ context.CancelFunc, halt chan struct{}) { close(halt) }},
		{"canceled", func(cancel context.CancelFunc, _ chan struct{}) { cancel() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := testFlow(1000, 1)
			busy, _ := f.acquire(context.Background(), nil) // the only slot
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			halt := make(chan struct{})
			tt.stop(cancel, halt)
			if release, ok := f.acquire(ctx, halt); ok || release != nil {
				t.Fatal("acquired a slot that was taken")
			}
			busy()
			if release, ok := f.acquire(context.Background(), nil); !ok {
				t.Fatal("the slot given back by its holder could not be taken")
			} else {
				release()
			}
		})
	}
}
