package process

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/msk-consumer/msk-consumer/handler"
	"github.com/msk-consumer/msk-consumer/internal/health"
)

// TestCallInFlightPastItsTimeout: a handler call that has not returned is
// a condition of /readyz from the end of the handler's own timeout
// (HTTP_HANDLER_TIMEOUT; at once for a Go handler): the member stays ready
// for HandlerTimeout plus UNREADY_AFTER, then names the call's lane.
func TestCallInFlightPastItsTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, 30 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				h := handlerFunc(func(context.Context, handler.Batch) error { <-release; return nil })
				p, m := newProc(t, h, &fakeDLQ{}, nil, nil)
				p.cfg.HandlerTimeout, p.cfg.HandlerName = timeout, "orders"
				hl := health.New(10*time.Second, time.Hour, nil)
				hl.Joined()
				hl.AddCheck(p.Overdue)
				done := make(chan error, 1)
				go func() {
					_, err := p.ProcessIn(context.Background(), "t/2 lane 1", nil, records(3, nil), m)
					done <- err
				}()
				synctest.Wait()
				time.Sleep(timeout + 9*time.Second)
				if ok, why := hl.Ready(); !ok {
					t.Fatalf("after %s: not ready: %q", timeout+9*time.Second, why)
				}
				if got := p.OldestCall(time.Now()); got != timeout+9*time.Second {
					t.Fatalf("oldest call: %s, want %s", got, timeout+9*time.Second)
				}
				time.Sleep(2 * time.Second)
				ok, why := hl.Ready()
				if ok || !strings.Contains(why, "t/2 lane 1 stuck for 11s: handler orders has not returned from a call of 3 records (offsets 100 to 102)") {
					t.Fatalf("after %s: ready %v, %q; want the lane's call named", timeout+11*time.Second, ok, why)
				}
				close(release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if ok, why := hl.Ready(); !ok {
					t.Fatalf("after the call returned: %q", why)
				}
				if got := p.OldestCall(time.Now()); got != 0 {
					t.Fatalf("oldest call with none in flight: %s", got)
				}
			})
		})
	}
}
