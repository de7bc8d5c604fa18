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

// classOf is the class Classify, the service's one classifier, gives
// err, in the names of the operator contract. An error that is unavailable
// and something else besides is reported as ambiguous: Classify takes it as
// unavailable, but the handlers under test never return one.
func classOf(err error) class {
	cls, _ := Classify(err)
	var items *ItemFailures
	if cls == ClassUnavailable && (errors.As(err, &items) || errors.Is(err, ErrPermanent)) {
		return classAmbiguous
	}
	return map[Class]class{
		ClassOK:          classOK,
		ClassItems:       classPartial,
		ClassUnavailable: classUnavailable,
		ClassRejected:    classRejected,
		ClassFailed:      classFailed,
	}[cls]
}
