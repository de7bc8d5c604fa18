package handler

import "errors"

// Class is what an error returned by Handle means to the service: the
// failure classes of the operator contract. Classify is the one place that
// decides it; the service and its tests use it alike.
type Class uint8

const (
	// ClassOK: every record of the batch succeeded (a nil error).
	ClassOK Class = iota
	// ClassItems: the records an *ItemFailures names failed or were
	// invalid, the others succeeded.
	ClassItems
	// ClassUnavailable: the handler could not work at all (ErrUnavailable):
	// retried without limit, nothing dead-lettered for it.
	ClassUnavailable
	// ClassRejected: the records were rejected (ErrPermanent): bisected at
	// once, a single rejected record dead-lettered without retries.
	ClassRejected
	// ClassFailed: any other error: the batch is retried, then bisected.
	ClassFailed
)

// String names the class as traces (consumer.outcome) and logs show it.
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassItems:
		return "partial"
	case ClassUnavailable:
		return "unavailable"
	case ClassRejected:
		return "rejected"
	}
	return "failed"
}

// Classify returns the class of err, in this order: nil is ClassOK; an
// error that is ErrUnavailable is ClassUnavailable, whatever else it
// carries (an outage must never dead-letter a record); an *ItemFailures
// is ClassItems, and is returned; ErrPermanent is ClassRejected; any other
// error is ClassFailed.
func Classify(err error) (Class, *ItemFailures) {
	var items *ItemFailures
	switch {
	case err == nil:
		return ClassOK, nil
	case errors.Is(err, ErrUnavailable):
		return ClassUnavailable, nil
	case errors.As(err, &items):
		return ClassItems, items
	case errors.Is(err, ErrPermanent):
		return ClassRejected, nil
	}
	return ClassFailed, nil
}
