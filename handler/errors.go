package handler

import (
	"errors"
	"strconv"
	"strings"
)

// ErrPermanent marks a batch that the handler's downstream rejected: the
// records, not the downstream, are at fault (an HTTP 400, 413 or 422).
// Retrying the same batch cannot help, so it is bisected at once: each half
// is handled on its own, down to single records, and a single record that
// is still rejected is dead-lettered as "handler" without retries. Wrap it
// with Permanent.
var ErrPermanent = errors.New("permanent handler failure")

// Permanent wraps err so that the batch is bisected at once and a single
// rejected record is dead-lettered without retries.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() []error      { return []error{ErrPermanent, e.err} }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// ErrUnavailable marks a batch that the handler could not work on at all:
// its downstream could not be reached, timed out, refused the credentials
// or is overloaded. It is not the records' fault, so they are never
// dead-lettered for it (unless HANDLER_MAX_RECORD_AGE expires): the batch
// is retried without limit with capped backoff, the partition waits, and
// the service turns unready after UNREADY_AFTER. Wrap it with Unavailable.
var ErrUnavailable = errors.New("handler unavailable")

// Unavailable wraps err so that the batch is retried without limit and
// nothing is dead-lettered for it.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return e.err.Error() }
func (e *unavailableError) Unwrap() []error      { return []error{ErrUnavailable, e.err} }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// ItemFailures reports that some records of the batch failed and every
// other record succeeded, as in AWS Lambda's partial batch response.
type ItemFailures struct {
	// Offsets are records that failed; they are retried.
	Offsets []int64
	// Invalid are records rejected as invalid (a failed validation): they
	// are dead-lettered at once with dlq.error.kind=validation, never
	// retried.
	Invalid []int64
	// Err says why, when the handler knows; it may be nil.
	Err error
	// RecordErrs, if not nil, holds the errors of single records of
	// Offsets or Invalid, by offset. A record's own error is the message
	// of its dead-letter copy (dlq.error.message); a record without one
	// gets Err's, or, without Err, one saying that the handler reported
	// it failed or invalid. Error does not list them.
	RecordErrs map[int64]error
}

func (e *ItemFailures) Error() string {
	var b strings.Builder
	list := func(what string, offsets []int64) {
		if len(offsets) == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(what)
		for i, o := range offsets {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(o, 10))
		}
	}
	list("records failed at offsets ", e.Offsets)
	list("records invalid at offsets ", e.Invalid)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ItemFailures) Unwrap() error { return e.Err }
