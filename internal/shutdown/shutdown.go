// Package shutdown is the service's one shutdown plan: SHUTDOWN_TIMEOUT,
// counted once from the signal (or the fatal error), divided into the
// deadline of each phase, in the order they run:
//
//	Work     in-flight batches finish (a revoke during shutdown too)
//	Abandon  batches canceled at Work are waited for
//	Commit   the final commit is sent
//	End      the group is left and the Kafka client closed: SHUTDOWN_TIMEOUT
//	Close    past End, the client's close is no longer waited for
//	Flush    spans still queued are exported (Flush)
//	Server   the metrics and health server stops (Server)
//
// A fifth of the budget, at most 5s, is kept for committing and leaving.
// The phases that run after End (the client's close, the trace export, the
// server) get a short grace each, so that the process exits within about
// SHUTDOWN_TIMEOUT plus a second whatever is in flight.
//
// Two bounds are not counted from the signal, because the work they
// bound also happens outside a shutdown: AbandonGrace (a revoke or a lost
// partition abandons its work too) and ReleaseTimeout (an abandoned batch
// gives its idempotency claims back).
package shutdown

import "time"

// Plan is the shutdown's deadlines. The zero Plan is no shutdown begun.
type Plan struct {
	Work, Abandon, Commit, End time.Time
}

// Grace is how long past End the Kafka client's close is waited for (Close).
const Grace = 500 * time.Millisecond

// AbandonGrace bounds the wait for workers after their work was canceled:
// a dead-letter write already sent cannot be called back, and a handler
// may ignore its context. Once shutdown begins, Abandon bounds it as well.
const AbandonGrace = 5 * time.Second

// ReleaseTimeout bounds giving back the idempotency claims of an abandoned
// batch: a courtesy to the next owner (the claims expire anyway) that must
// not hold up a shutdown.
const ReleaseTimeout = 500 * time.Millisecond

// Bounds of the export of the spans still queued (Flush), and of the
// metrics server's shutdown (Server).
const (
	maxFlush    = 5 * time.Second
	minFlush    = 250 * time.Millisecond
	serverGrace = 2 * time.Second
)

// New returns the plan of a shutdown that began at start with total
// (SHUTDOWN_TIMEOUT) to run in.
func New(start time.Time, total time.Duration) Plan {
	end := start.Add(total)
	reserve := min(total/5, 5*time.Second)
	return Plan{
		Work:    end.Add(-reserve),
		Abandon: end.Add(-reserve / 2),
		Commit:  end.Add(-reserve / 4),
		End:     end,
	}
}

// Close is when the consumer stops waiting for the Kafka client to close.
func (p Plan) Close() time.Time { return p.End.Add(Grace) }

// Flush is the deadline of the trace export begun at now: what is left to
// End, at most 5s and at least 250ms (5s when no shutdown began: the
// consumer stopped before it started).
func (p Plan) Flush(now time.Time) time.Time {
	deadline := now.Add(maxFlush)
	if !p.End.IsZero() && p.End.Before(deadline) { // a shutdown began
		deadline = p.End
	}
	if floor := now.Add(minFlush); deadline.Before(floor) {
		return floor
	}
	return deadline
}

// Server is the deadline of the metrics server's shutdown begun at now.
func (p Plan) Server(now time.Time) time.Time { return now.Add(serverGrace) }
