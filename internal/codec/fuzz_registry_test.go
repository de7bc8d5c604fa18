package codec

import (
	"context"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// Fuzzers of the Protobuf decoder and of whole framed inputs through the
// registry decoders. Every input either decodes or fails with ErrDecode;
// nothing panics. (The framing parsers' own fuzzers are in ../../framing.)
//
//	go test -run '^$' -fuzz '^FuzzFramedDecoders$' -fuzztime 60s ./internal/codec/

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

func (s stubSource) lookup(_ context.Context, fr *framing.Frame) (*registrySchema, error) {
	if rs, ok := s[keyOf(fr)]; ok {
		return rs, nil
	}
	return nil, &MissingSchemaError{Framing: fr.Framing, SchemaID: fr.SchemaRef(), Registry: "stub"}
}
