package codec

import (
	"errors"
	"strings"

	"github.com/msk-consumer/msk-consumer/config"
)

// Callers classify errors with errors.Is against these sentinels and never by
// their text. The typed errors below carry the detail; each reports which
// sentinel it belongs to through an Is method, so new typed errors can be
// added without changing how callers decide between dead-lettering and
// retrying:
//
//   - *DecodeError: the bytes do not decode (framing or payload): ErrDecode.
//   - *SchemaError: the schema a record names does not parse or compile:
//     ErrDecode, because retrying cannot make it parse.
//   - *MissingSchemaError: the registry answered that the schema id or
//     version does not exist: ErrDecode.
//   - *RegistryError: the registry could not be reached, timed out or
//     answered with a server error (or refused our credentials):
//     ErrUnavailable.
var (
	// ErrDecode means the bytes of a key or value are bad: the failure is
	// permanent and the record goes to the dead-letter topic.
	ErrDecode = errors.New("decode failed")

	// ErrUnavailable means something the decoder depends on (a schema
	// registry) could not be reached: the failure is transient, the record
	// is retried and never dead-lettered for it.
	ErrUnavailable = errors.New("decoder dependency unavailable")

	// ErrUnsupported means a configuration asks for something this package
	// cannot do. The constructors return it; AppendJSON does not.
	ErrUnsupported = errors.New("unsupported")
)

// DecodeError is a key or value that does not decode in its format. It
// matches ErrDecode. Format is the format that failed; Framing and SchemaID,
// when the record was written through a registry, say which framing it
// had and which schema it named (a Confluent id in decimal, a Glue schema
// version UUID); Reason says what was wrong with the bytes; Err, when set,
// is the underlying error (for example an *avro.ShortBufferError, or
// io.ErrUnexpectedEOF when the input ends inside a value).
//
// Construct it with field names: fields may be added.
type DecodeError struct {
	Format   config.Format
	Framing  config.Registry
	SchemaID string
	Reason   string
	Err      error
}

// Error returns one line such as "avro: 3 bytes left over after the value"
// or "avro (confluent schema id 7): sku: input ends inside string".
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Format))
	if e.Format == "" {
		b.WriteString("decode")
	}
	writeSchemaRef(&b, e.Framing, e.SchemaID)
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return oneLine(b.String())
}

// Is reports that a DecodeError is an ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the underlying error, if any.
func (e *DecodeError) Unwrap() error { return e.Err }

// SchemaError is a schema, named by a record or given in a file, that does
// not parse or compile (or has no message of the configured name). From a
// registry it matches ErrDecode: the record that names it cannot be decoded,
// now or later.
type SchemaError struct {
	Format   config.Format
	Framing  config.Registry
	SchemaID string
	// Registry is the registry's URL, without credentials, or "glue".
	Registry string
	Err      error
}

func (e *SchemaError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Format))
	writeSchemaRef(&b, e.Framing, e.SchemaID)
	b.WriteString(": schema does not parse")
	if e.Registry != "" {
		b.WriteString(" (from ")
		b.WriteString(e.Registry)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return oneLine(b.String())
}

// Is reports that a SchemaError is an ErrDecode.
func (e *SchemaError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the underlying error.
func (e *SchemaError) Unwrap() error { return e.Err }

// MissingSchemaError is a schema id (Confluent) or schema version id (Glue)
// that the registry answered it does not have. It matches ErrDecode.
type MissingSchemaError struct {
	Framing  config.Registry
	SchemaID string
	Registry string
	Err      error
}

func (e *MissingSchemaError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Framing))
	b.WriteString(" schema ")
	b.WriteString(idWord(e.Framing))
	b.WriteString(" ")
	b.WriteString(e.SchemaID)
	b.WriteString(" not found in ")
	b.WriteString(e.Registry)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return oneLine(b.String())
}

// Is reports that a MissingSchemaError is an ErrDecode.
func (e *MissingSchemaError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the underlying error.
func (e *MissingSchemaError) Unwrap() error { return e.Err }

// RegistryError is a registry that could not answer: unreachable, timing
// out, a 5xx, or an answer that says our credentials are refused. It
// matches ErrUnavailable: the record is retried, never dead-lettered for it.
type RegistryError struct {
	Framing  config.Registry
	SchemaID string
	Registry string
	// StatusCode is the HTTP status of the answer, 0 when there was none.
	StatusCode int
	Err        error
}

func (e *RegistryError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Framing))
	b.WriteString(" schema registry ")
	b.WriteString(e.Registry)
	b.WriteString(" unavailable fetching schema ")
	b.WriteString(idWord(e.Framing))
	b.WriteString(" ")
	b.WriteString(e.SchemaID)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return oneLine(b.String())
}

// Is reports that a RegistryError is an ErrUnavailable.
func (e *RegistryError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the underlying error.
func (e *RegistryError) Unwrap() error { return e.Err }

func idWord(f config.Registry) string {
	if f == config.RegistryGlue {
		return "version id"
	}
	return "id"
}

func writeSchemaRef(b *strings.Builder, f config.Registry, id string) {
	if f == "" || f == config.RegistryNone {
		return
	}
	b.WriteString(" (")
	b.WriteString(string(f))
	if id != "" {
		b.WriteString(" schema ")
		b.WriteString(idWord(f))
		b.WriteString(" ")
		b.WriteString(id)
	} else {
		b.WriteString(" framing")
	}
	b.WriteString(")")
}

// oneLine keeps a log line or a dead-letter header on one line, whatever an
// underlying error says.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	}
	return s
}

// decodeErr is shorthand for the common case of a reason with no underlying
// error.
func decodeErr(f config.Format, reason string) *DecodeError {
	return &DecodeError{Format: f, Reason: reason}
}

// withSchema sets the framing and schema id of err when it is a
// *DecodeError that has none, and returns err.
func withSchema(err error, f config.Registry, id string) error {
	var de *DecodeError
	if errors.As(err, &de) && de.Framing == "" {
		de.Framing, de.SchemaID = f, id
	}
	return err
}
