package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/twmb/avro"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
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
// Bytes and fixed values are written as standard base64 strings, as the
// operator contract says (and as Protobuf's canonical JSON does), not in
// Avro's own JSON encoding of bytes (a string of code points U+0000 to
// U+00FF).
//
// Decimals (decimal, big-decimal) are the exception to the walk: they go
// through twmb/avro, which computes their JSON from the decoded number.
type avroDecoder struct {
	schema *avro.Schema
	root   *anode
	latin1 bool // see walkState.latin1
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
	st := walkState{latin1: d.latin1}
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

// avroRegistryDecoder decodes Avro framed by a registry: the writer schema
// comes from the registry by the id in the framing and, when a reader
// schema (the schema file) is given, each record is resolved to it.
type avroRegistryDecoder struct {
	src             schemaSource
	framing         config.Registry
	maxDecompressed int
	reader          *avro.Schema // nil: the writer schema is the shape
	readerDec       *avroDecoder // the transcoder for reader
	cache           flight[schemaKey, *avroWriter]
	bufs            sync.Pool // *[]byte for resolved records
}

// avroWriter is how records of one writer schema are decoded. When the
// writer is the reader (the common case: the same canonical form), or
// there is no reader, direct transcodes the wire bytes. Otherwise resolved
// (twmb/avro Resolve of writer to reader) decodes the record into the
// reader's shape, which is encoded again with the reader schema and then
// transcoded: the JSON is then exactly what a record written with the
// reader schema gives, base64 bytes and unions included.
type avroWriter struct {
	direct   *avroDecoder
	resolved *avro.Schema
}

func (d *avroRegistryDecoder) AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error) {
	fr, err := unframe(d.framing, config.FormatAvro, src, d.maxDecompressed)
	if err != nil {
		return dst, err
	}
	w, err := d.writer(ctx, &fr)
	if err != nil {
		return dst, err
	}
	if w.direct != nil {
		out, err := w.direct.AppendJSON(ctx, dst, fr.Payload)
		if err != nil {
			return dst, withSchema(err, d.framing, fr.SchemaRef())
		}
		return out, nil
	}
	var v any
	rest, err := w.resolved.Decode(fr.Payload, &v)
	if err != nil {
		return dst, &DecodeError{Format: config.FormatAvro, Framing: d.framing, SchemaID: fr.SchemaRef(), Reason: "resolving to the reader schema", Err: err}
	}
	if len(rest) != 0 {
		return dst, &DecodeError{Format: config.FormatAvro, Framing: d.framing, SchemaID: fr.SchemaRef(),
			Reason: strconv.Itoa(len(rest)) + " bytes left over after the value"}
	}
	bp, _ := d.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer d.bufs.Put(bp)
	bin, err := d.reader.AppendEncode((*bp)[:0], v)
	*bp = bin
	if err != nil {
		return dst, &DecodeError{Format: config.FormatAvro, Framing: d.framing, SchemaID: fr.SchemaRef(), Reason: "re-encoding with the reader schema", Err: err}
	}
	out, err := d.readerDec.AppendJSON(ctx, dst, bin)
	if err != nil {
		return dst, withSchema(err, d.framing, fr.SchemaRef())
	}
	return out, nil
}

func (d *avroRegistryDecoder) writer(ctx context.Context, frp *framing.Frame) (*avroWriter, error) {
	k := keyOf(frp)
	if w, ok := d.cache.cached(k); ok {
		return w, nil
	}
	fr := new(framing.Frame) // a copy for the fetch, so that only a miss allocates
	*fr = *frp
	return d.cache.get(ctx, k, func(ctx context.Context) (*avroWriter, error) {
		rs, err := d.src.lookup(ctx, fr)
		if err != nil {
			return nil, err
		}
		schemaErr := func(err error) error {
			return &SchemaError{Format: config.FormatAvro, Framing: d.framing, SchemaID: fr.SchemaRef(), Registry: d.src.name(), Err: err}
		}
		if rs.format != config.FormatAvro {
			return nil, schemaErr(fmt.Errorf("the registry says the schema is %s, not avro", orUnknown(rs.format)))
		}
		ws, err := avro.Parse(rs.text)
		if err != nil {
			return nil, schemaErr(err)
		}
		return newAvroWriter(ws, d.reader, d.readerDec, schemaErr)
	})
}

// newAvroWriter decides how records of writer ws are decoded to reader.
func newAvroWriter(ws, reader *avro.Schema, readerDec *avroDecoder, schemaErr func(error) error) (*avroWriter, error) {
	if reader == nil {
		dec, err := newAvro(ws)
		if err != nil {
			return nil, schemaErr(err)
		}
		return &avroWriter{direct: dec}, nil
	}
	if bytes.Equal(ws.Canonical(), reader.Canonical()) {
		return &avroWriter{direct: readerDec}, nil
	}
	rs, err := avro.Resolve(ws, reader)
	if err != nil {
		return nil, schemaErr(fmt.Errorf("writer schema cannot be resolved to the reader schema: %w", err))
	}
	return &avroWriter{resolved: rs}, nil
}
