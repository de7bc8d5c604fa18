package process

import (
	"maps"
	"slices"
	"time"
)

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
	return slices.Collect(maps.Values(p.calls.m))
}
