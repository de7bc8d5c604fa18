// Package framing parses the wire framings of the schema registries, with
// no network call: the bytes a Confluent or AWS Glue serializer puts around
// a key or value, which name the writer schema and, for Protobuf, the
// message.
//
// Confluent: magic byte 0, a 4-byte big-endian schema id, then for Protobuf
// the message-index array (a zig-zag varint count, then that many zig-zag
// varint indexes; a count of 0 alone means [0]), then the payload.
//
// Glue: header version byte 3, a compression byte (0 none, 5 zlib), the
// 16-byte schema version UUID, then the payload, zlib-compressed when the
// compression byte says so. Glue's Protobuf payload starts with one unsigned
// varint: the index of the message in the schema's messages sorted by full
// name.
//
// It does not fetch schemas from a registry and does not decode payloads:
// Unframe returns the schema reference and the payload bytes, and the caller
// decodes them with the schema it has (see handler.AvroValue and
// handler.ProtoValue).
package framing

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/msk-consumer/msk-consumer/config"
)

const (
	confluentMagic   = 0
	glueHeader       = 3
	glueNone         = 0
	glueZlib         = 5
	glueHeaderLength = 18

	// DefaultMaxDecompressed bounds the size of a Glue zlib payload after
	// decompression: beyond it the record is malformed, so that a small
	// compressed record cannot take the memory of the process (a zip
	// bomb). Kafka's default maximum message size is 1 MiB; 64 MiB leaves
	// room for anything real.
	DefaultMaxDecompressed = 64 << 20

	// maxMessageIndexes bounds the Confluent message-index array: a path of
	// nested message types, never deep in practice.
	maxMessageIndexes = 64

	// maxMessageIndex bounds one message index, Confluent or Glue: no
	// schema has a million message types.
	maxMessageIndex = 1 << 20
)

// Frame is a key or value with its registry framing stripped.
type Frame struct {
	// Framing is the framing that was stripped: confluent or glue.
	Framing config.Registry
	// ID is the Confluent schema id.
	ID uint32
	// Version is the Glue schema version id.
	Version [16]byte
	// Indexes are, for Protobuf, the Confluent message indexes (a path of
	// nested message types), or Glue's one message index (the position of
	// the message in the schema's messages sorted by full name).
	Indexes []int
	// Payload is what follows the framing: the encoded value,
	// decompressed for Glue. It may alias the input.
	Payload []byte
}

// SchemaRef is the schema the frame names, as an operator reads it: the
// Confluent id in decimal or the Glue version UUID.
func (f *Frame) SchemaRef() string {
	if f.Framing == config.RegistryGlue {
		return uuidString(f.Version)
	}
	return strconv.FormatUint(uint64(f.ID), 10)
}

// Unframe strips the framing of src as written through a registry of kind
// r for a value of format f: for Protobuf, the message indexes too; for
// Glue, the header, decompressing (at most maxDecompressed bytes, or
// DefaultMaxDecompressed when it is 0 or less). With r none (or empty), the
// frame is src itself.
//
// Bytes that do not carry the framing are an *Error; an r it does not know
// is an error wrapping ErrUnknownFraming.
func Unframe(r config.Registry, f config.Format, src []byte, maxDecompressed int) (Frame, error) {
	switch r {
	case "", config.RegistryNone:
		return Frame{Payload: src}, nil
	case config.RegistryConfluent:
		fr, e := parseConfluent(src)
		if e != nil {
			return fr, e.at(r, "")
		}
		if f == config.FormatProtobuf {
			if fr.Indexes, fr.Payload, e = parseMessageIndexes(fr.Payload, nil); e != nil {
				return fr, e.at(r, fr.SchemaRef())
			}
		}
		return fr, nil
	case config.RegistryGlue:
		fr, e := parseGlue(src, maxDecompressed)
		if e != nil {
			ref := ""
			if len(src) >= glueHeaderLength {
				ref = fr.SchemaRef()
			}
			return fr, e.at(r, ref)
		}
		if f == config.FormatProtobuf {
			i, rest, e := glueMessageIndex(fr.Payload)
			if e != nil {
				return fr, e.at(r, fr.SchemaRef())
			}
			fr.Indexes, fr.Payload = []int{i}, rest
		}
		return fr, nil
	}
	return Frame{}, fmt.Errorf("%w %q", ErrUnknownFraming, string(r))
}

// parseConfluent strips the magic byte and schema id.
func parseConfluent(src []byte) (Frame, *Error) {
	fr := Frame{Framing: config.RegistryConfluent}
	if len(src) < 5 {
		return fr, malformed(strconv.Itoa(len(src)) + " bytes, shorter than the 5-byte header")
	}
	if src[0] != confluentMagic {
		return fr, malformed("magic byte " + strconv.Itoa(int(src[0])) + ", want 0")
	}
	fr.ID = binary.BigEndian.Uint32(src[1:5])
	fr.Payload = src[5:]
	return fr, nil
}

// parseMessageIndexes reads the Confluent Protobuf message-index array,
// appending the indexes to dst. The count is checked against the bytes left
// before anything is allocated.
func parseMessageIndexes(src []byte, dst []int) ([]int, []byte, *Error) {
	n, k := binary.Varint(src)
	if k <= 0 {
		return nil, nil, malformed("message-index count is not a valid varint")
	}
	src = src[k:]
	if n == 0 {
		return append(dst, 0), src, nil
	}
	if n < 0 {
		return nil, nil, malformed("negative message-index count " + strconv.FormatInt(n, 10))
	}
	if n > maxMessageIndexes || n > int64(len(src)) {
		return nil, nil, malformed("message-index count " + strconv.FormatInt(n, 10) + " exceeds the bytes left")
	}
	for range n {
		i, k := binary.Varint(src)
		if k <= 0 {
			return nil, nil, malformed("message index is not a valid varint")
		}
		if i < 0 || i > maxMessageIndex {
			return nil, nil, malformed("message index " + strconv.FormatInt(i, 10) + " out of range")
		}
		dst = append(dst, int(i))
		src = src[k:]
	}
	return dst, src, nil
}

// parseGlue strips the Glue header and decompresses the payload.
func parseGlue(src []byte, maxDecompressed int) (Frame, *Error) {
	fr := Frame{Framing: config.RegistryGlue}
	if len(src) < glueHeaderLength {
		return fr, malformed(strconv.Itoa(len(src)) + " bytes, shorter than the 18-byte header")
	}
	copy(fr.Version[:], src[2:18])
	if src[0] != glueHeader {
		return fr, malformed("header version byte " + strconv.Itoa(int(src[0])) + ", want 3")
	}
	switch src[1] {
	case glueNone:
		fr.Payload = src[18:]
	case glueZlib:
		p, err := inflate(src[18:], maxDecompressed)
		if err != nil {
			return fr, err
		}
		fr.Payload = p
	default:
		return fr, malformed("compression byte " + strconv.Itoa(int(src[1])) + ", want 0 (none) or 5 (zlib)")
	}
	return fr, nil
}

// glueMessageIndex reads the unsigned varint that starts a Glue Protobuf
// payload.
func glueMessageIndex(p []byte) (int, []byte, *Error) {
	var v uint64
	for i := 0; i < len(p) && i < 5; i++ {
		v |= uint64(p[i]&0x7f) << (7 * i)
		if p[i] < 0x80 {
			if v > maxMessageIndex {
				break
			}
			return int(v), p[i+1:], nil
		}
	}
	return 0, nil, malformed("message index is not a valid varint")
}

// inflate decompresses a zlib stream of at most limit bytes, and fails past
// that limit rather than allocating without bound.
func inflate(src []byte, limit int) ([]byte, *Error) {
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, &Error{Reason: "zlib", Err: err}
		}
		zr = pooled
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return nil, &Error{Reason: "zlib", Err: err}
		}
	}
	defer zlibReaders.Put(zr)
	// Start from a guess bounded by the input, so that a claim of the
	// stream cannot make the first allocation large.
	buf := bytes.NewBuffer(make([]byte, 0, min(4*len(src)+64, limit)))
	n, err := buf.ReadFrom(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, &Error{Reason: "zlib", Err: err}
	}
	if n > int64(limit) {
		return nil, malformed("zlib payload decompresses to more than " + strconv.Itoa(limit) + " bytes")
	}
	return buf.Bytes(), nil
}

// zlibReaders reuses zlib readers (about 40 KB of state each). It holds no
// state that outlives a call: a pool, not a global setting.
var zlibReaders sync.Pool

// uuidString formats a Glue schema version id as its registry does.
func uuidString(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
