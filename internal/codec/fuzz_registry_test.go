package codec

import (
	"context"
	"errors"
	"testing"

	"msk-consumer/config"
)

// Fuzzers of the framing parsers and the Protobuf decoder. Every input
// either parses or fails with ErrDecode; nothing panics, and no length or
// count in the input makes an allocation larger than the input allows.
//
//	go test -run '^$' -fuzz '^FuzzConfluentFraming$' -fuzztime 60s ./internal/codec/

func FuzzConfluentFraming(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 'x'})
	f.Add([]byte{0, 0, 0, 0, 1, 4, 2, 4, 'x'})
	f.Add([]byte{0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, format := range []config.Format{config.FormatAvro, config.FormatProtobuf} {
			fr, err := Unframe(config.RegistryConfluent, format, src, 0)
			if err != nil {
				if !errors.Is(err, ErrDecode) {
					t.Fatalf("got %v, want ErrDecode", err)
				}
				continue
			}
			if len(fr.Payload) > len(src) || len(fr.Indexes) > len(src) {
				t.Fatalf("payload %d indexes %d from %d bytes", len(fr.Payload), len(fr.Indexes), len(src))
			}
		}
	})
}

func FuzzGlueFraming(f *testing.F) {
	id := [16]byte{1, 2, 3}
	f.Add(append(append([]byte{3, 0}, id[:]...), 'x'))
	f.Add(append(append([]byte{3, 5}, id[:]...), 0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01))
	f.Add(append([]byte{3, 9}, id[:]...))
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, format := range []config.Format{config.FormatJSON, config.FormatProtobuf} {
			fr, err := Unframe(config.RegistryGlue, format, src, 1<<20)
			if err != nil {
				if !errors.Is(err, ErrDecode) {
					t.Fatalf("got %v, want ErrDecode", err)
				}
				continue
			}
			if len(fr.Payload) > 1<<20 {
				t.Fatalf("payload of %d bytes past the limit", len(fr.Payload))
			}
		}
	})
}

func FuzzProtobuf(f *testing.F) {
	d, err := New(config.Codec{Format: config.FormatProtobuf, SchemaFile: protoSetFile, ProtoMessage: "shop.v1.Product"})
	if err != nil {
		f.Fatal(err)
	}
	protoBin, _ := goldenProduct(f, protoFiles(f))
	f.Add(protoBin)
	f.Add([]byte{0x08, 0x01})
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, src []byte) {
		dst := []byte("dst")
		out, err := d.AppendJSON(context.Background(), dst, src)
		checkResult(t, dst, out, err)
	})
}

// FuzzFramedDecoders runs whole framed inputs through the registry
// decoders, with the schemas already cached (no network): framing, index
// and payload together.
func FuzzFramedDecoders(f *testing.F) {
	g := loadGoldenRegistry(f)
	for _, v := range g.Vectors {
		if v.Registry != config.RegistryNone {
			f.Add(goldenVec(f, v.Name))
		}
	}
	type dec struct {
		Decoder
		framing config.Registry
	}
	var decs []dec
	// The golden registry, in memory: no network while fuzzing.
	stub := stubSource{}
	for _, c := range g.Confluent {
		stub[schemaKey{id: uint32(c.ID)}] = &registrySchema{text: c.Schema, format: formatOfType(c.Type)}
	}
	for _, gv := range g.Glue {
		stub[schemaKey{version: parseUUID(f, gv.Version)}] = &registrySchema{text: gv.Definition, format: formatOfType(gv.DataFormat)}
	}
	for _, r := range []config.Registry{config.RegistryConfluent, config.RegistryGlue} {
		for _, c := range []config.Codec{
			{Format: config.FormatAvro, SchemaFile: productSchemaFile},
			{Format: config.FormatAvro},
			{Format: config.FormatProtobuf},
			{Format: config.FormatProtobuf, SchemaFile: protoSetFile, ProtoMessage: "shop.v1.Product"},
			{Format: config.FormatJSON},
		} {
			c.Registry = r
			d, err := buildDecoder(c, stub, Options{MaxDecompressed: 1 << 20})
			if err != nil {
				f.Fatal(err)
			}
			decs = append(decs, dec{d, r})
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, d := range decs {
			dst := []byte("dst")
			out, err := d.AppendJSON(context.Background(), dst, src)
			checkResult(t, dst, out, err)
		}
	})
}

func formatOfType(s string) config.Format {
	switch s {
	case "AVRO":
		return config.FormatAvro
	case "PROTOBUF":
		return config.FormatProtobuf
	case "JSON":
		return config.FormatJSON
	}
	return ""
}

// stubSource is a registry in memory: a schema it lacks is not found.
type stubSource map[schemaKey]*registrySchema

func (s stubSource) name() string { return "stub" }

func (s stubSource) lookup(_ context.Context, fr *Frame) (*registrySchema, error) {
	if rs, ok := s[keyOf(fr)]; ok {
		return rs, nil
	}
	return nil, &MissingSchemaError{Framing: fr.Framing, SchemaID: fr.SchemaRef(), Registry: "stub"}
}
