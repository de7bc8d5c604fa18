package health

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTest() (*Health, *clock) {
	c := &clock{time.Unix(1000, 0)}
	return New(30*time.Second, time.Minute, c.now), c
}

func TestReadiness(t *testing.T) {
	h, c := newTest()
	var gauge []bool
	h.OnReadiness(func(b bool) { gauge = append(gauge, b) })
	if ok, why := h.Ready(); ok || !strings.Contains(why, "not joined") {
		t.Fatalf("before joining: got %v %q, want not ready, not joined", ok, why)
	}
	h.Joined()
	if ok, why := h.Ready(); !ok {
		t.Fatalf("joined: got not ready: %s", why)
	}

	// A stuck partition is tolerated for unreadyAfter, then reported.
	h.Stuck("orders/3", "dead-letter topic unwritable: NOT_ENOUGH_REPLICAS")
	c.add(29 * time.Second)
	h.Stuck("orders/3", "still failing") // keeps the first time
	if ok, _ := h.Ready(); !ok {
		t.Fatal("stuck 29s: got not ready, want ready")
	}
	c.add(time.Second)
	ok, why := h.Ready()
	if ok || !strings.Contains(why, "orders/3 stuck for 30s: still failing") {
		t.Fatalf("stuck 30s: got %v %q", ok, why)
	}
	h.Unstuck("orders/3")
	if ok, _ := h.Ready(); !ok {
		t.Fatal("unstuck: got not ready")
	}

	// Broker connection errors, cleared by one good connection.
	h.BrokerConnect(errors.New("dial tcp: connection refused"))
	c.add(31 * time.Second)
	if ok, why := h.Ready(); ok || !strings.Contains(why, "brokers unreachable") {
		t.Fatalf("brokers down: got %v %q", ok, why)
	}
	h.BrokerConnect(nil)
	if ok, _ := h.Ready(); !ok {
		t.Fatal("broker back: got not ready")
	}

	// Group errors count only when they last.
	h.GroupError(errors.New("COORDINATOR_NOT_AVAILABLE"))
	if ok, _ := h.Ready(); !ok {
		t.Fatal("fresh group error: got not ready")
	}
	c.add(30 * time.Second)
	if ok, _ := h.Ready(); ok {
		t.Fatal("group error for 30s: got ready")
	}
	h.Joined()
	if ok, _ := h.Ready(); !ok {
		t.Fatal("rejoined: got not ready")
	}
	h.Left()
	if ok, _ := h.Ready(); ok {
		t.Fatal("left: got ready")
	}
	want := []bool{false, true, true, false, true, false, true, true, false, true, false}
	if len(gauge) != len(want) {
		t.Fatalf("readiness callbacks: got %v, want %v", gauge, want)
	}
	for i := range want {
		if gauge[i] != want[i] {
			t.Fatalf("readiness callbacks: got %v, want %v", gauge, want)
		}
	}
}

func TestLiveness(t *testing.T) {
	h, c := newTest()
	c.add(59 * time.Second)
	if ok, _ := h.Live(); !ok {
		t.Fatal("59s after start: not live")
	}
	c.add(2 * time.Second)
	if ok, why := h.Live(); ok || !strings.Contains(why, "has not run for 1m1s") {
		t.Fatalf("61s without a tick: got %v %q", ok, why)
	}
	h.Tick()
	if ok, _ := h.Live(); !ok {
		t.Fatal("after tick: not live")
	}
}

func TestHandler(t *testing.T) {
	h, _ := newTest()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: got %d, want 200", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "not joined") {
		t.Fatalf("/readyz before join: got %d %q, want 503", code, body)
	}
	h.Joined()
	if code, body := get("/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("/readyz joined: got %d %q, want 200 ok", code, body)
	}
}

func TestStallsListsEveryConditionWithReadysReason(t *testing.T) {
	h, c := newTest()
	h.Joined()
	start := c.t
	h.Stuck("orders/3", "dead-letter topic unwritable")
	h.AddCheck(func(now time.Time) []Condition {
		return []Condition{
			{Key: "orders/1", Reason: "handler has not returned", Since: start},
			{Key: "orders/2", Reason: "within its timeout", Since: now.Add(time.Second)},
		}
	})
	c.add(40 * time.Second)
	got := h.Stalls(c.t)
	if len(got) != 2 || got[0].Key != "orders/1" || got[1].Key != "orders/3" || !got[1].Since.Equal(start) {
		t.Fatalf("got %+v, want orders/1 and orders/3 (orders/2 has not begun)", got)
	}
	_, why := h.Ready()
	for _, s := range got {
		if !strings.Contains(why, s.Key+" stuck for 40s: "+s.Reason) {
			t.Errorf("readyz %q does not give %s's reason %q", why, s.Key, s.Reason)
		}
	}
}
