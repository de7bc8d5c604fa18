package handler

import "errors"

// class is what a Handle error means to the caller, as the operator
// contract names it.
type class string

const (
	classOK          class = "ok"
	classPartial     class = "partial"
	classFailed      class = "batch failed"
	classRejected    class = "rejected"
	classUnavailable class = "unavailable"
	classAmbiguous   class = "unavailable and something else"
)

// classOf classifies err in the order the Handler documentation gives:
// unavailable, *ItemFailures, rejected, and any other error. An error that
// is both unavailable and something else is reported as ambiguous: the
// handlers of this package never return one.
func classOf(err error) class {
	var items *ItemFailures
	unavailable := errors.Is(err, ErrUnavailable)
	switch {
	case err == nil:
		return classOK
	case unavailable && (errors.As(err, &items) || errors.Is(err, ErrPermanent)):
		return classAmbiguous
	case unavailable:
		return classUnavailable
	case errors.As(err, &items):
		return classPartial
	case errors.Is(err, ErrPermanent):
		return classRejected
	}
	return classFailed
}
