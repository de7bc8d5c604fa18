package builtin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

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
