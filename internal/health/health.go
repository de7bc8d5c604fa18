// Package health answers /healthz and /readyz from conditions that the rest
// of the service reports: the poll loop ticking, the group joined, brokers
// reachable, and partitions not stuck on unavailable infrastructure (an
// unwritable dead-letter topic, an unreachable schema registry).
//
// It does not probe anything itself.
package health

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Health collects liveness and readiness conditions. The zero value is not
// usable; build it with New. Methods are safe for concurrent use.
type Health struct {
	unreadyAfter time.Duration
	staleAfter   time.Duration
	now          func() time.Time

	mu          sync.Mutex
	lastTick    time.Time
	joined      bool
	groupErrAt  time.Time // when the group left the joined state on an error; zero if none
	groupErr    string
	connErrAt   time.Time // first failed broker connection since the last good one
	connErr     string
	stuck       map[string]Condition // by key, since the first Stuck
	checks      []Check
	onReadiness func(bool)
}

// Condition is a condition holding work back: key names the work it
// holds, and it counts toward UNREADY_AFTER from Since, which may be ahead
// of now. A Check reports them when readiness is computed, rather than as
// they begin and end (Stuck); Stalls returns both kinds.
type Condition struct {
	Key, Reason string
	Since       time.Time
}

// Check returns the conditions that hold now. It is called with the
// Health's lock held, so it must not call the Health.
type Check func(now time.Time) []Condition

// New returns a Health whose readiness fails once a condition has held for
// unreadyAfter, and whose liveness fails when the loop has not ticked for
// staleAfter. now is the clock (time.Now in production).
func New(unreadyAfter, staleAfter time.Duration, now func() time.Time) *Health {
	if now == nil {
		now = time.Now
	}
	return &Health{
		unreadyAfter: unreadyAfter,
		staleAfter:   staleAfter,
		now:          now,
		lastTick:     now(),
		stuck:        make(map[string]Condition),
	}
}

// OnReadiness sets a function called with the readiness each time it is
// computed (for a gauge).
func (h *Health) OnReadiness(fn func(bool)) {
	h.mu.Lock()
	h.onReadiness = fn
	h.mu.Unlock()
}

// Tick records that the service's loop is running.
func (h *Health) Tick() {
	h.mu.Lock()
	h.lastTick = h.now()
	h.mu.Unlock()
}

// Joined records that the member joined the group and got its assignment.
func (h *Health) Joined() {
	h.mu.Lock()
	h.joined, h.groupErrAt, h.groupErr = true, time.Time{}, ""
	h.mu.Unlock()
}

// Left records that the member is not in the group (it left, or lost its
// partitions); it is unready at once.
func (h *Health) Left() {
	h.mu.Lock()
	h.joined = false
	h.mu.Unlock()
}

// GroupError records a group management error. The member counts as joined
// until the error has lasted unreadyAfter without a new assignment.
func (h *Health) GroupError(err error) {
	h.mu.Lock()
	if h.groupErrAt.IsZero() {
		h.groupErrAt = h.now()
	}
	h.groupErr = err.Error()
	h.mu.Unlock()
}

// BrokerConnect records the outcome of a connection attempt to a broker.
func (h *Health) BrokerConnect(err error) {
	h.mu.Lock()
	if err == nil {
		h.connErrAt, h.connErr = time.Time{}, ""
	} else {
		if h.connErrAt.IsZero() {
			h.connErrAt = h.now()
		}
		h.connErr = err.Error()
	}
	h.mu.Unlock()
}

// PartitionKey names a partition in Stuck and Unstuck: "topic/partition".
// It is the one key scheme of stalls, with LaneKey: whoever waits reports
// and clears under the key of the partition or lane it works for.
func PartitionKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// LaneKey names lane i of a partition that has several lanes:
// "topic/partition lane i".
func LaneKey(topic string, partition int32, lane int) string {
	return PartitionKey(topic, partition) + " lane " + strconv.Itoa(lane)
}

// Stuck records that the work named key (a partition) cannot make progress
// for reason; Unstuck clears it. Repeated calls keep the first time.
func (h *Health) Stuck(key, reason string) {
	h.mu.Lock()
	if s, ok := h.stuck[key]; ok {
		s.Reason = reason
		h.stuck[key] = s
	} else {
		h.stuck[key] = Condition{Key: key, Reason: reason, Since: h.now()}
	}
	h.mu.Unlock()
}

// AddCheck adds a check consulted each time readiness is computed.
func (h *Health) AddCheck(c Check) {
	h.mu.Lock()
	h.checks = append(h.checks, c)
	h.mu.Unlock()
}

// Unstuck clears a Stuck condition.
func (h *Health) Unstuck(key string) {
	h.mu.Lock()
	delete(h.stuck, key)
	h.mu.Unlock()
}

// Live reports whether the loop ticked recently.
func (h *Health) Live() (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if since := h.now().Sub(h.lastTick); since > h.staleAfter {
		return false, fmt.Sprintf("the poll loop has not run for %s", since.Round(time.Second))
	}
	return true, "ok"
}

// Ready reports whether the service is ready, and if not, why.
func (h *Health) Ready() (bool, string) {
	h.mu.Lock()
	ready, why := h.readyLocked()
	fn := h.onReadiness
	h.mu.Unlock()
	if fn != nil {
		fn(ready)
	}
	return ready, why
}

func (h *Health) readyLocked() (bool, string) {
	now := h.now()
	var why []string
	if !h.joined {
		why = append(why, "not joined to the consumer group")
	}
	if !h.groupErrAt.IsZero() && now.Sub(h.groupErrAt) >= h.unreadyAfter {
		why = append(why, "group errors for "+now.Sub(h.groupErrAt).Round(time.Second).String()+": "+h.groupErr)
	}
	if !h.connErrAt.IsZero() && now.Sub(h.connErrAt) >= h.unreadyAfter {
		why = append(why, "brokers unreachable for "+now.Sub(h.connErrAt).Round(time.Second).String()+": "+h.connErr)
	}
	var stuck []string
	for key, s := range h.stuck {
		if d := now.Sub(s.Since); d >= h.unreadyAfter {
			stuck = append(stuck, key+" stuck for "+d.Round(time.Second).String()+": "+s.Reason)
		}
	}
	for _, check := range h.checks {
		for _, c := range check(now) {
			if d := now.Sub(c.Since); d >= h.unreadyAfter {
				stuck = append(stuck, c.Key+" stuck for "+d.Round(time.Second).String()+": "+c.Reason)
			}
		}
	}
	sort.Strings(stuck)
	why = append(why, stuck...)
	if len(why) > 0 {
		return false, strings.Join(why, "\n")
	}
	return true, "ok"
}

// Stalls returns every condition that holds now (Stuck ones and those of
// the checks), also those not yet past UNREADY_AFTER, with the reasons
// Ready gives for them; a check's condition counts from its Since, so one
// not yet begun (a handler call within its own timeout) is left out.
func (h *Health) Stalls(now time.Time) []Condition {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Collect(maps.Values(h.stuck))
	for _, check := range h.checks {
		for _, c := range check(now) {
			if !c.Since.After(now) {
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Handler serves /healthz and /readyz: 200 "ok", or 503 with the reasons one
// per line.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { answer(w, h.Live) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { answer(w, h.Ready) })
	return mux
}

func answer(w http.ResponseWriter, check func() (bool, string)) {
	ok, why := check()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}
