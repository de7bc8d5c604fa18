package codec

import (
	"errors"
	"strings"

	"msk-consumer/config"
)

// Callers classify errors with errors.Is against these sentinels and never by
// their text. The typed errors below carry the detail; each reports which
// sentinel it belongs to through an Is method, so new typed errors (a schema
// that does not parse, a schema id the registry does not know, a registry
// that cannot be reached) can be added without changing how callers decide
// between dead-lettering and retrying.
var (
	// ErrDecode means the bytes of a key or value are bad: the failure is
	// permanent and the record goes to the dead-letter topic.
	ErrDecode = errors.New("decode failed")

	// ErrUnavailable means something the decoder depends on (a schema
	// registry) could not be reached: the failure is transient, the record
	// is retried and never dead-lettered for it.
	ErrUnavailable = errors.New("decoder dependency unavailable")

	// ErrUnsupported means a configuration asks for something this package
	// cannot do (yet). New returns it; AppendJSON does not.
	ErrUnsupported = errors.New("unsupported")
)

// DecodeError is a key or value that does not decode in its format. It
// matches ErrDecode. Format is the format that failed; Reason says what was
// wrong with the bytes; Err, when set, is the underlying error (for example
// an *avro.ShortBufferError, or io.ErrUnexpectedEOF when the input ends
// inside a value).
//
// Fields may be added (a schema id, the registry that supplied the schema);
// construct it with field names.
type DecodeError struct {
	Format config.Format
	Reason string
	Err    error
}

// Error returns one line such as "avro: 3 bytes left over after the value".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Format))
	if e.Format == "" {
		b.WriteString("decode")
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	s := b.String()
	// A log line or a dead-letter header must stay on one line, whatever
	// the underlying error says.
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	}
	return s
}

// Is reports that a DecodeError is an ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the underlying error, if any.
func (e *DecodeError) Unwrap() error { return e.Err }

// decodeErr is shorthand for the common case of a reason with no underlying
// error.
func decodeErr(f config.Format, reason string) *DecodeError {
	return &DecodeError{Format: f, Reason: reason}
}
