package handler

import (
	"errors"
	"net/http"
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

// ErrInvalidResponse is wrapped by the HTTP handler's error when the service
// answered 2xx with a body that is not a valid batch response: not JSON, not
// an object, or an item identifier that is missing, not a decimal string, or
// not an offset of the batch. As with AWS Lambda, the whole batch failed:
// retried, then bisected. It is neither rejected nor unavailable: the
// service answered, but cannot be understood, and a record may be what
// makes it answer so.
var ErrInvalidResponse = errors.New("invalid batch response")

// StatusError is an answer of the HTTP handler's service with a status that
// is not 2xx. The HTTP handler returns it in one of the three classes the
// operator contract gives the status:
//
//   - wrapped with Unavailable: 408, 429, 502, 503, 504, 401, 403, 404,
//     405, 407, every 1xx (only 101 can be final) and 3xx (redirects are
//     never followed), and any status outside 100-599: the service cannot
//     take any batch, so the batch is retried without limit;
//   - on its own, the batch failed: 500 and every other 5xx;
//   - wrapped with Permanent, the batch was rejected: 400, 413, 422 and
//     every other 4xx.
type StatusError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// URL is the request URL without credentials or query.
	URL string
	// Body is the start of the response body, on one line, possibly empty.
	Body string
	// RequestBytes is the size of the request body, in bytes; the message
	// of a 413 names it.
	RequestBytes int
	// Location is where a 3xx redirected to, without credentials or
	// query, possibly empty. It was not followed.
	Location string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("http handler: POST ")
	b.WriteString(e.URL)
	b.WriteString(": status ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	switch {
	case e.StatusCode == http.StatusRequestEntityTooLarge:
		// Say it in words: for a single record, this is why it was
		// dead-lettered.
		b.WriteString(": the request body")
		if e.RequestBytes > 0 {
			b.WriteString(" of ")
			b.WriteString(strconv.Itoa(e.RequestBytes))
			b.WriteString(" bytes")
		}
		b.WriteString(" is too large for the service")
	case e.Location != "":
		b.WriteString(": redirect to ")
		b.WriteString(e.Location)
		b.WriteString(" not followed")
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}
