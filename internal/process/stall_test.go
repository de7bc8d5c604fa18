package process

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/msk-consumer/msk-consumer/handler"
)

// TestStallsPerLane: two lanes of one partition find the handler
// unavailable; the one that recovers clears its own stall, and the other,
// still waiting, stays reported (so /readyz keeps saying so).
func TestStallsPerLane(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var laneADown atomic.Bool
		laneADown.Store(true)
		var laneBCalls atomic.Int32
		h := handlerFunc(func(_ context.Context, b handler.Batch) error {
			switch string(b.Records[0].Raw.Key) {
			case "k0": // lane A's batch
				if laneADown.Load() {
					return handler.Unavailable(errors.New("db a down"))
				}
			case "k1": // lane B's batch: down once
				if laneBCalls.Add(1) == 1 {
					return handler.Unavailable(errors.New("db b down"))
				}
			}
			return nil
		})
		st := &fakeStalls{stuck: map[string]string{}}
		p, m := newProc(t, h, &fakeDLQ{}, st, nil)
		recs := records(2, nil) // keys k0 and k1, partition t/2

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		doneA := make(chan error, 1)
		go func() {
			_, err := p.ProcessIn(ctx, "t/2 lane 0", nil, recs[:1], m)
			doneA <- err
		}()
		if _, err := p.ProcessIn(ctx, "t/2 lane 1", nil, recs[1:], m); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st.mu.Lock()
		_, aStuck := st.stuck["t/2 lane 0"]
		_, bStuck := st.stuck["t/2 lane 1"]
		st.mu.Unlock()
		if !aStuck || bStuck {
			t.Fatalf("stalls: lane 0 %v, lane 1 %v; want lane 0 still stuck, lane 1 cleared", aStuck, bStuck)
		}
		laneADown.Store(false)
		if err := <-doneA; err != nil {
			t.Fatal(err)
		}
		if len(st.stuck) != 0 {
			t.Fatalf("stalls left: %v", st.stuck)
		}
	})
}
