package consume

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// pauser is the part of *kgo.Client that flow uses.
type pauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// flow is the consumer's flow control: the in-flight batch slots
// (MAX_IN_FLIGHT_BATCHES), and the bytes fetched and not yet finished
// (MAX_BUFFERED_BYTES) with the pause state they decide. Fetched bytes are
// added as records arrive (add) and given back as records finish
// (partition.finish); what a stopped partition still holds is given back
// when it is detached, so that no exit path of a lane can keep bytes held
// and its partition paused. A lane's slot is given back through the release
// that acquire returns, once.
//
// It bounds the bytes fetched and not yet finished by
// giving each assigned partition a fair share of the budget (the budget
// over the partitions assigned), so that a partition stuck on its handler,
// the dead-letter topic or the registry fills only its own share and the
// others keep flowing. It pauses fetching of a partition at its share and
// resumes it below three quarters of it. The shares add up to the budget;
// what the client had fetched when a partition paused comes on top,
// bounded by the fetch sizes (see Consumer.newClient).
//
// There is deliberately no rule that pauses every partition when the total
// reaches the budget: a stuck partition's last fetch can take it past its
// share, and such a rule would then stop the healthy partitions until the
// stuck one is released.
//
// Its lock is taken after partition.mu is released and before the client's
// own locks; nothing is called with it held but the client's pause and
// resume, and partition.poke, which does not block.
type flow struct {
	limit int64
	slots chan struct{} // one per batch in flight, across partitions
	cl    pauser
	gauge prometheus.Gauge

	mu    sync.Mutex
	total int64
	share int64
	parts map[*partition]struct{}
	// onDivide is told the number of partitions when the budget is
	// divided again (the fetch sizer's partition limit); nil for none.
	onDivide func(n int)
}

func newFlow(limit int64, slots int, cl pauser, gauge prometheus.Gauge) *flow {
	return &flow{
		limit: max(limit, 1), slots: make(chan struct{}, max(slots, 1)),
		cl: cl, gauge: gauge, share: max(limit, 1), parts: map[*partition]struct{}{},
	}
}

// acquire waits for an in-flight slot for a batch. It returns release,
// which gives the slot back; calls after the first do nothing. If halt is
// closed or ctx is done first, it returns false. A batch's bytes are not
// the slot's business: they stay counted until its records are finished
// (partition.finish).
func (f *flow) acquire(ctx context.Context, halt <-chan struct{}) (release func(), ok bool) {
	select {
	case f.slots <- struct{}{}:
	case <-halt:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { <-f.slots }) }, true
}

// attach adds partitions to the budget's division.
func (f *flow) attach(ps ...*partition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		f.parts[p] = struct{}{}
	}
	f.divideLocked()
}

// detach removes stopped partitions, releasing what they still held, and
// resumes them in the client so that a later owner of the same partition
// on this member does not start paused.
func (f *flow) detach(ps ...*partition) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resume := map[string][]int32{}
	for _, p := range ps {
		if _, ok := f.parts[p]; !ok {
			continue
		}
		delete(f.parts, p)
		f.total -= p.held
		p.held = 0
		if p.paused.Load() {
			p.paused.Store(false)
			resume[p.topic] = append(resume[p.topic], p.id)
		}
	}
	if len(resume) > 0 {
		f.cl.ResumeFetchPartitions(resume)
	}
	f.gauge.Set(float64(f.total))
	f.divideLocked()
}

// add accounts for n bytes fetched for p (n > 0) or finished (n < 0, from
// a release), and pauses or resumes fetching.
func (f *flow) add(p *partition, n int64) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.parts[p]; !ok {
		return // detached: its bytes were released then
	}
	p.held += n
	f.total += n
	f.gauge.Set(float64(f.total))
	f.updateLocked(p, nil, nil)
}

// divideLocked recomputes the share after the assignment changed.
func (f *flow) divideLocked() {
	f.share = f.limit / int64(max(len(f.parts), 1))
	if f.onDivide != nil {
		f.onDivide(len(f.parts))
	}
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for p := range f.parts {
		f.updateLocked(p, pause, resume)
	}
	f.apply(pause, resume)
}

// updateLocked pauses or resumes p as its holding says: it pauses at the
// share and resumes below three quarters of it. With nil maps it calls the
// client at once; otherwise it collects the change.
//
// The gap matters: pausing makes the client drop what it had fetched for
// the partition and not yet handed over (franz-go discards a paused
// partition's buffered data and fetches it again after the resume), and a
// partition that resumed as soon as one batch finished would pause again
// with the next fetch, every few milliseconds under a backlog.
func (f *flow) updateLocked(p *partition, pause, resume map[string][]int32) {
	want := p.held >= f.share
	if !want && p.paused.Load() {
		want = p.held >= f.share-f.share/4
	}
	if want == p.paused.Load() {
		return
	}
	p.paused.Store(want)
	if pause == nil {
		pause, resume = map[string][]int32{}, map[string][]int32{}
		defer f.apply(pause, resume)
	}
	if want {
		pause[p.topic] = append(pause[p.topic], p.id)
		// A worker waiting for its batch to fill would wait
		// BATCH_MAX_WAIT for records that cannot come: have it hand
		// over what it holds.
		p.poke()
	} else {
		resume[p.topic] = append(resume[p.topic], p.id)
	}
}

func (f *flow) apply(pause, resume map[string][]int32) {
	if len(pause) > 0 {
		f.cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		f.cl.ResumeFetchPartitions(resume)
	}
}

// buffered returns the bytes held in all.
func (f *flow) buffered() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}
