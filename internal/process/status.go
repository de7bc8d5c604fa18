package process

import "time"

// Call is a handler call in flight, for the status page.
type Call struct {
	Key         string // its lane (or partition), as Stalls names it
	Start       time.Time
	First, Last int64 // offsets of its first and last records
	Records     int
	Attempt     int // of its first record, 1 the first
}

// Calls returns the handler calls in flight.
func (p *Processor) Calls() []Call {
	p.calls.mu.Lock()
	defer p.calls.mu.Unlock()
	out := make([]Call, 0, len(p.calls.m))
	for w, c := range p.calls.m {
		out = append(out, Call{Key: w.stallKey, Start: c.start, First: c.first, Last: c.last, Records: c.n, Attempt: c.attempt})
	}
	return out
}
