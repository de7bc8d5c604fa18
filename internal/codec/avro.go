package codec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/twmb/avro"

	"msk-consumer/config"
)

// avroDecoder decodes Avro binary written with one schema (no framing).
//
// It transcodes: it walks a program compiled from the schema and appends
// JSON straight from the wire bytes, with no intermediate map. Its output is
// the JSON value that avro.Schema.Decode into an any followed by
// Schema.AppendEncodeJSON gives (the differential test holds it to that),
// and it fails on the same inputs. It differs in three ways, each for the
// better: a union renders the branch the writer chose, where the map route
// re-picks a branch by the decoded value's shape (and so turns a record of
// the second of two record branches into the first, dropping fields); map
// entries keep their wire order rather than Go's random one; and a key that
// occurs twice on the wire occurs twice in the JSON object, where a Go map
// keeps the last (JSON readers mostly keep the last too).
//
// Decimals (decimal, big-decimal) are the exception to the walk: they go
// through twmb/avro, which computes their JSON from the decoded number.
type avroDecoder struct {
	schema *avro.Schema
	root   *anode
}

// newAvroFile reads and parses an .avsc file.
func newAvroFile(path string) (*avroDecoder, error) {
	if path == "" {
		return nil, errors.New("avro needs a schema file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading avro schema: %w", err)
	}
	s, err := avro.Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("parsing avro schema %s: %w", path, err)
	}
	return newAvro(s)
}

// newAvro compiles a parsed schema into a decoder.
func newAvro(s *avro.Schema) (*avroDecoder, error) {
	root, err := compileAvro(s.Root())
	if err != nil {
		return nil, err
	}
	return &avroDecoder{schema: s, root: root}, nil
}

// AppendJSON decodes one Avro value and appends it as JSON. All of src must
// be that one value.
func (d *avroDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	orig := len(dst)
	var st walkState
	out, rest, err := st.walk(dst, src, d.root)
	if err != nil {
		return dst[:orig], avroDecodeErr(err)
	}
	if len(rest) != 0 {
		unit := " bytes"
		if len(rest) == 1 {
			unit = " byte"
		}
		return dst[:orig], decodeErr(config.FormatAvro, strconv.Itoa(len(rest))+unit+" left over after the value")
	}
	return out, nil
}

// avroDecodeErr turns an error from the walk into a *DecodeError whose
// reason names where in the value it happened.
func avroDecodeErr(err error) *DecodeError {
	var we *wireError
	if !errors.As(err, &we) {
		return &DecodeError{Format: config.FormatAvro, Err: err}
	}
	reason := we.msg
	if p := we.pathString(); p != "" && reason != "" {
		reason = p + ": " + reason
	} else if p != "" {
		reason = p
	}
	return &DecodeError{Format: config.FormatAvro, Reason: reason, Err: we.err}
}
