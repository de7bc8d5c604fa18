package codec

import (
	"context"
	"testing"

	"github.com/twmb/avro"

	"github.com/msk-consumer/msk-consumer/config"
)

// BenchmarkDecodeFramed measures the formats behind registry framing, with
// the schema cached (the steady state): one record's value per op.
//
//	go test -run '^$' -bench 'BenchmarkDecode' -benchmem ./internal/codec/
func BenchmarkDecodeFramed(b *testing.B) {
	g := loadGoldenRegistry(b)
	stub := stubSource{}
	for _, c := range g.Confluent {
		stub[schemaKey{id: uint32(c.ID)}] = &registrySchema{text: c.Schema, format: formatOfType(c.Type)}
	}
	for _, gv := range g.Glue {
		stub[schemaKey{version: parseUUID(b, gv.Version)}] = &registrySchema{text: gv.Definition, format: formatOfType(gv.DataFormat)}
	}
	for _, v := range g.Vectors {
		if v.Name[:5] != "value" {
			continue
		}
		b.Run(v.Name[6:], func(b *testing.B) {
			src := goldenVec(b, v.Name)
			var d Decoder
			var err error
			if v.Registry == config.RegistryNone {
				d, err = New(v.codec())
			} else {
				d, err = buildDecoder(v.codec(), stub, Options{})
			}
			must(b, err)
			benchDecoder(b, d, src)
		})
	}
	// The map route for Protobuf's baseline is protojson itself; for Avro
	// it is in BenchmarkDecode (avro-map).
	b.Run("avro_evolved_map_route", func(b *testing.B) {
		// What the evolved path would cost without the transcoder:
		// Resolve, decode into an any, EncodeJSON.
		reader := mustSchemaFile(b, productSchemaFile)
		writer := mustSchemaFile(b, productV1File)
		rs, err := avro.Resolve(writer, reader)
		must(b, err)
		fr, err := unframe(config.RegistryConfluent, config.FormatAvro, goldenVec(b, "value_avro_confluent_evolved"), 0)
		must(b, err)
		benchDecoder(b, avroMapDecoder{rs}, fr.Payload)
	})
}

func benchDecoder(b *testing.B, d Decoder, src []byte) {
	ctx := context.Background()
	dst, err := d.AppendJSON(ctx, nil, src)
	must(b, err)
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if dst, err = d.AppendJSON(ctx, dst[:0], src); err != nil {
			b.Fatal(err)
		}
	}
}
