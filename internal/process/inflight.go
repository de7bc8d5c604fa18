package process

import (
	"fmt"
	"sync"
	"time"

	"github.com/msk-consumer/msk-consumer/internal/health"
)

// calls are the handler calls in flight, for /readyz and
// consumer_oldest_batch_in_flight_seconds: a handler that never returns
// (a Go handler that ignores its context, a connection stuck below the
// HTTP timeout's reach) holds its lane forever, and nothing else sees it.
type calls struct {
	mu sync.Mutex
	m  map[*work]call
}

// call is one handler call in flight.
type call struct {
	start       time.Time
	first, last int64 // offsets of its first and last records
	n           int
	attempt     int // of its first record, 1 the first
}

// begin records that w hands unit to the handler now.
func (p *Processor) begin(w *work, unit []int) {
	c := call{start: time.Now(), first: w.recs[unit[0]].Offset, last: w.recs[unit[len(unit)-1]].Offset, n: len(unit), attempt: w.attempts[unit[0]]}
	p.calls.mu.Lock()
	if p.calls.m == nil {
		p.calls.m = make(map[*work]call)
	}
	p.calls.m[w] = c
	p.calls.mu.Unlock()
}

// end records that w's handler call returned.
func (p *Processor) end(w *work) {
	p.calls.mu.Lock()
	delete(p.calls.m, w)
	p.calls.mu.Unlock()
}

// OldestCall returns how long the oldest handler call in flight has been,
// 0 if none is.
func (p *Processor) OldestCall(now time.Time) time.Duration {
	p.calls.mu.Lock()
	defer p.calls.mu.Unlock()
	var oldest time.Duration
	for _, c := range p.calls.m {
		oldest = max(oldest, now.Sub(c.start))
	}
	return oldest
}

// Overdue is a health.Check: every handler call in flight is a condition
// named by its lane (or partition), counted from the end of the handler's
// own timeout (Config.HandlerTimeout; at once for a Go handler, which has
// none), so that /readyz answers 503 once a call has been in flight for
// UNREADY_AFTER past it.
func (p *Processor) Overdue(now time.Time) []health.Condition {
	p.calls.mu.Lock()
	defer p.calls.mu.Unlock()
	var out []health.Condition
	for w, c := range p.calls.m {
		reason := fmt.Sprintf("handler %s has not returned from a call of %d records (offsets %d to %d) made %s ago",
			p.cfg.HandlerName, c.n, c.first, c.last, now.Sub(c.start).Round(time.Second))
		if t := p.cfg.HandlerTimeout; t > 0 {
			reason += fmt.Sprintf(", past its own timeout of %s", t)
		}
		out = append(out, health.Condition{Key: w.stallKey, Reason: reason, Since: c.start.Add(p.cfg.HandlerTimeout)})
	}
	return out
}
