package process

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// The synchronous form of Handle, for the tests: the service's lanes use
// Handle and Pending.Write (internal/consume).

// Process processes recs, records of one partition in offset order, and
// returns how many of them, from the first, are finished: handled, or
// dead-lettered with an acknowledgement. It returns len(recs) and nil unless
// ctx ends first, in which case it returns ctx's error and the finished
// prefix, which the caller may commit.
//
// Records are identified by offset: a handler may reorder or filter the
// batch it is given without changing which records are taken as failed.
//
// Process is Handle followed by Pending.Write: it waits for the dead-letter
// copies.
func (p *Processor) Process(ctx context.Context, recs []*kgo.Record, m *metrics.Topic) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	b, err := p.Handle(ctx, recs, m)
	if err == nil {
		err = b.Write(ctx)
	}
	n := b.w.finished()
	b.Close()
	return n, err
}

// finished returns how many records from the first are handled,
// acknowledged in the dead-letter topic, or skipped as duplicates.
func (w *work) finished() int {
	for i, st := range w.states {
		if st != handled && st != lettered && st != skipped {
			return i
		}
	}
	return len(w.states)
}
