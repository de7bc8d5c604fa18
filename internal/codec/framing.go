package codec

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"sync"

	"msk-consumer/config"
)

// The wire framings of the schema registries, parsed without a network call.
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

const (
	confluentMagic   = 0
	glueHeader       = 3
	glueNone         = 0
	glueZlib         = 5
	glueHeaderLength = 18

	// DefaultMaxDecompressed bounds the size of a Glue zlib payload after
	// decompression: beyond it the record is a decode failure, so that a
	// small compressed record cannot take the memory of the process (a zip
	// bomb). Kafka's default maximum message size is 1 MiB; 64 MiB leaves
	// room for anything real.
	DefaultMaxDecompressed = 64 << 20

	// maxMessageIndexes bounds the Confluent message-index array: a path of
	// nested message types, never deep in practice.
	maxMessageIndexes = 64
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
// r for a value of format f: for Confluent Protobuf, the message indexes too;
// for Glue, the header, decompressing (at most maxDecompressed bytes, or
// DefaultMaxDecompressed when it is 0 or less). With r none (or empty), the
// frame is src itself. Errors wrap ErrDecode.
//
// Unframe is for Go handlers that decode the payload into their own types
// (see handler.Typed); the decoders built by New use it too.
func Unframe(r config.Registry, f config.Format, src []byte, maxDecompressed int) (Frame, error) {
	switch r {
	case "", config.RegistryNone:
		return Frame{Payload: src}, nil
	case config.RegistryConfluent:
		fr, err := parseConfluent(src)
		if err != nil {
			return fr, frameErr(f, r, "", err)
		}
		if f == config.FormatProtobuf {
			if fr.Indexes, fr.Payload, err = parseMessageIndexes(fr.Payload, nil); err != nil {
				return fr, frameErr(f, r, fr.SchemaRef(), err)
			}
		}
		return fr, nil
	case config.RegistryGlue:
		fr, err := parseGlue(src, maxDecompressed)
		if err != nil {
			ref := ""
			if len(src) >= glueHeaderLength {
				ref = fr.SchemaRef()
			}
			return fr, frameErr(f, r, ref, err)
		}
		if f == config.FormatProtobuf {
			i, rest, err := glueMessageIndex(fr.Payload)
			if err != nil {
				return fr, frameErr(f, r, fr.SchemaRef(), err)
			}
			fr.Indexes, fr.Payload = []int{i}, rest
		}
		return fr, nil
	}
	return Frame{}, &DecodeError{Format: f, Reason: "unknown framing " + strconv.Quote(string(r))}
}

func frameErr(f config.Format, r config.Registry, ref string, err error) error {
	return &DecodeError{Format: f, Framing: r, SchemaID: ref, Reason: "malformed " + string(r) + " framing", Err: err}
}

// parseConfluent strips the magic byte and schema id.
func parseConfluent(src []byte) (Frame, error) {
	fr := Frame{Framing: config.RegistryConfluent}
	if len(src) < 5 {
		return fr, errors.New(strconv.Itoa(len(src)) + " bytes, shorter than the 5-byte header")
	}
	if src[0] != confluentMagic {
		return fr, errors.New("magic byte " + strconv.Itoa(int(src[0])) + ", want 0")
	}
	fr.ID = binary.BigEndian.Uint32(src[1:5])
	fr.Payload = src[5:]
	return fr, nil
}

// parseMessageIndexes reads the Confluent Protobuf message-index array,
// appending the indexes to dst. The count is checked against the bytes left
// before anything is allocated.
func parseMessageIndexes(src []byte, dst []int) ([]int, []byte, error) {
	n, k := binary.Varint(src)
	if k <= 0 {
		return nil, nil, errors.New("message-index count is not a valid varint")
	}
	src = src[k:]
	if n == 0 {
		return append(dst, 0), src, nil
	}
	if n < 0 {
		return nil, nil, errors.New("negative message-index count " + strconv.FormatInt(n, 10))
	}
	if n > maxMessageIndexes || n > int64(len(src)) {
		return nil, nil, errors.New("message-index count " + strconv.FormatInt(n, 10) + " exceeds the bytes left")
	}
	for range n {
		i, k := binary.Varint(src)
		if k <= 0 {
			return nil, nil, errors.New("message index is not a valid varint")
		}
		if i < 0 || i > 1<<20 {
			return nil, nil, errors.New("message index " + strconv.FormatInt(i, 10) + " out of range")
		}
		dst = append(dst, int(i))
		src = src[k:]
	}
	return dst, src, nil
}

// parseGlue strips the Glue header and decompresses the payload.
func parseGlue(src []byte, maxDecompressed int) (Frame, error) {
	fr := Frame{Framing: config.RegistryGlue}
	if len(src) < glueHeaderLength {
		return fr, errors.New(strconv.Itoa(len(src)) + " bytes, shorter than the 18-byte header")
	}
	copy(fr.Version[:], src[2:18])
	if src[0] != glueHeader {
		return fr, errors.New("header version byte " + strconv.Itoa(int(src[0])) + ", want 3")
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
		return fr, errors.New("compression byte " + strconv.Itoa(int(src[1])) + ", want 0 (none) or 5 (zlib)")
	}
	return fr, nil
}

// inflate decompresses a zlib stream of at most limit bytes, and fails past
// that limit rather than allocating without bound.
func inflate(src []byte, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	br := bytes.NewReader(src)
	var zr io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, errors.New("zlib: " + err.Error())
		}
		zr = pooled
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return nil, errors.New("zlib: " + err.Error())
		}
	}
	defer zlibReaders.Put(zr)
	// Start from a guess bounded by the input, so that a claim of the
	// stream cannot make the first allocation large.
	buf := bytes.NewBuffer(make([]byte, 0, min(4*len(src)+64, limit)))
	n, err := buf.ReadFrom(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, errors.New("zlib: " + err.Error())
	}
	if n > int64(limit) {
		return nil, errors.New("zlib payload decompresses to more than " + strconv.Itoa(limit) + " bytes")
	}
	return buf.Bytes(), nil
}

// zlibReaders reuses zlib readers (about 40 KB of state each). It holds no
// state that outlives a call: a pool, not a global setting.
var zlibReaders sync.Pool

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
