package process

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/msk-consumer/msk-consumer/internal/health"
	"github.com/msk-consumer/msk-consumer/internal/metrics"
)

// Process is the synchronous form of what a lane does with a batch
// (internal/consume): Handle, Pending.Write, then the longest prefix of
// recs that Pending.Done reports finished, which is what the lane's
// tracker would commit, and Close. It returns that prefix's length and the
// error of Handle or Write (ctx's, when it ended first).
//
// Records are identified by offset: a handler may reorder or filter the
// batch it is given without changing which records are taken as failed.
func (p *Processor) Process(ctx context.Context, recs []*kgo.Record, m *metrics.Topic) (int, error) {
	if len(recs) == 0 {
		return 0, nil
	}
	return p.ProcessIn(ctx, health.PartitionKey(recs[0].Topic, recs[0].Partition), nil, recs, m)
}

// ProcessIn is Process for the lane named stall, in slot (nil: none).
func (p *Processor) ProcessIn(ctx context.Context, stall string, slot Slot, recs []*kgo.Record, m *metrics.Topic) (int, error) {
	b, err := p.Handle(ctx, stall, slot, recs, m)
	if err == nil {
		err = b.Write(ctx, nil)
	}
	n := 0
	for n < len(recs) && b.Done(n) {
		n++
	}
	b.Close()
	return n, err
}
