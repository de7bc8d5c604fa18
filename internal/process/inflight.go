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
	m  map[*work]Call
}

// begin records that w hands unit to the handler now.
func (p *Processor) begin(w *work, unit []int) {
	c := Call{Key: w.stallKey, Start: time.Now(), First: w.recs[unit[0]].Offset, Last: w.recs[unit[len(unit)-1]].Offset,
		Records: len(unit), Attempt: w.attempts[unit[0]]}
	p.calls.mu.Lock()
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
		oldest = max(oldest, now.Sub(c.Start))
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
	for _, c := range p.calls.m {
		reason := fmt.Sprintf("handler %s has not returned from a call of %d records (offsets %d to %d) made %s ago",
			p.cfg.HandlerName, c.Records, c.First, c.Last, now.Sub(c.Start).Round(time.Second))
		if t := p.cfg.HandlerTimeout; t > 0 {
			reason += fmt.Sprintf(", past its own timeout of %s", t)
		}
		out = append(out, health.Condition{Key: c.Key, Reason: reason, Since: c.Start.Add(p.cfg.HandlerTimeout)})
	}
	return out
}
