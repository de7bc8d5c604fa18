// Package codec turns the bytes of a record's key or value into JSON:
// formats (JSON, Avro, strings, bytes, numbers) and, in time, framings
// (Confluent, Glue) with schemas from files or registries.
//
// It knows nothing of Kafka clients or handlers. A nil key or value (no key,
// a tombstone) never reaches a Decoder: the caller renders it as null.
package codec

import (
	"context"
	"fmt"

	"msk-consumer/config"
)

// Decoder decodes one side (key or value) of records.
//
// AppendJSON decodes src and appends its JSON form to dst, returning the
// extended buffer. It must consume src completely and exactly: too short, an
// impossible length, or bytes left over are an error wrapping ErrDecode.
// Errors that say nothing about src (a schema registry that cannot be
// reached) wrap ErrUnavailable, so that the caller retries rather than
// dead-letters. On error, dst is returned cut back to its original length,
// so the caller may keep using it. Implementations are safe for concurrent
// use.
type Decoder interface {
	AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error)
}

// New returns the Decoder for one side of a record as configured.
//
// Only schema-less framing is supported for now: a Registry other than none
// (or empty) returns an error wrapping ErrUnsupported, as does protobuf. For
// avro, c.SchemaFile is read and parsed here; an error doing so names the
// file.
func New(c config.Codec) (Decoder, error) {
	switch c.Registry {
	case "", config.RegistryNone:
	default:
		return nil, fmt.Errorf("%s framing: schema registry framing is not supported yet: %w", c.Registry, ErrUnsupported)
	}
	switch c.Format {
	case config.FormatJSON:
		return jsonDecoder{}, nil
	case config.FormatString:
		return stringDecoder{}, nil
	case config.FormatBytes:
		return bytesDecoder{}, nil
	case config.FormatInt:
		return intDecoder{}, nil
	case config.FormatLong:
		return longDecoder{}, nil
	case config.FormatAvro:
		d, err := newAvroFile(c.SchemaFile)
		if err != nil {
			return nil, err
		}
		return d, nil
	case config.FormatProtobuf:
		return nil, fmt.Errorf("protobuf is not supported yet: %w", ErrUnsupported)
	default:
		return nil, fmt.Errorf("format %q: %w", c.Format, ErrUnsupported)
	}
}
