package framing

import (
	"errors"
	"strings"

	"github.com/msk-consumer/msk-consumer/config"
)

// Callers classify errors with errors.Is and errors.As, never by their
// text:
//
//   - *Error: the bytes do not carry the framing they were read as. The
//     record is bad: retrying cannot change it.
//   - ErrUnknownFraming: Unframe was asked for a framing it does not know,
//     a mistake of the caller rather than of the bytes.

// ErrUnknownFraming is wrapped by the error of Unframe for a config.Registry
// other than none, confluent and glue.
var ErrUnknownFraming = errors.New("unknown framing")

// Error is a key or value that does not carry the registry framing it was
// read as: a header too short or of the wrong version, an unknown
// compression, a zlib stream that is corrupt or decompresses past the
// limit, or Protobuf message indexes that are not valid varints.
//
// Construct it with field names: fields may be added.
type Error struct {
	// Framing is the framing the bytes were read as: confluent or glue.
	Framing config.Registry
	// SchemaID is the schema the header names, when it was read that far:
	// the Confluent id in decimal or the Glue version UUID (see
	// Frame.SchemaRef).
	SchemaID string
	// Reason says what is wrong with the bytes, such as "magic byte 1,
	// want 0".
	Reason string
	// Err, when set, is the underlying error (from compress/zlib).
	Err error
}

// Error returns one line such as "malformed confluent framing (schema id
// 7): message index is not a valid varint".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("malformed ")
	b.WriteString(string(e.Framing))
	b.WriteString(" framing")
	if e.SchemaID != "" {
		b.WriteString(" (schema ")
		if e.Framing == config.RegistryGlue {
			b.WriteString("version ")
		}
		b.WriteString("id ")
		b.WriteString(e.SchemaID)
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// malformed is an Error with a reason and no underlying error; Unframe
// fills in the framing and schema.
func malformed(reason string) *Error { return &Error{Reason: reason} }

// at sets the framing and schema of e and returns it as an error.
func (e *Error) at(r config.Registry, ref string) error {
	e.Framing, e.SchemaID = r, ref
	return e
}
