package consume

import (
	"context"
	"errors"
)

// errStopped abandons a batch that gave its in-flight slot back while it
// waited and whose partition was stopped meanwhile: it had handed nothing to
// the handler, and a stopped partition starts no batch.
var errStopped = errors.New("partition stopped while the batch waited for an in-flight slot")

// laneSlot is a lane's batch's in-flight slot as the processor sees it
// (process.Slot): a batch that waits for records in progress under another
// batch (the idempotency store's Busy) gives it back meanwhile, so that
// such waits cannot hold every MAX_IN_FLIGHT_BATCHES slot while other
// partitions have work. The batch keeps its lane, so its order, and its
// bytes stay counted.
type laneSlot struct {
	p       *partition
	release func() // nil while given back
}

// Yield implements process.Slot.
func (s *laneSlot) Yield() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// Take implements process.Slot.
func (s *laneSlot) Take(ctx context.Context) error {
	if s.release != nil {
		return nil
	}
	release, ok := s.p.flow.acquire(ctx, s.p.halt)
	if !ok {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errStopped
	}
	s.release = release
	return nil
}
