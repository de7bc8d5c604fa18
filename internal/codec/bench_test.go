package codec

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/msk-consumer/msk-consumer/config"
)

// BenchmarkDecode measures one record's key or value per op, appending to a
// reused buffer as the batcher does. avro-map is the straightforward route
// (decode into an any, then EncodeJSON) that the transcoder replaced;
// protobuf-dynamic is dynamicpb+protojson, which the Protobuf transcoder
// replaced.
//
//	go test -run '^$' -bench BenchmarkDecode -benchmem ./internal/codec/
func BenchmarkDecode(b *testing.B) {
	schema := mustSchemaFile(b, productSchemaFile)
	avroDec := mustAvroSchema(b, schema)
	small, large := goldenBin(b, "small"), goldenBin(b, "large")
	jsonValue, err := os.ReadFile("testdata/product_small.json")
	if err != nil {
		b.Fatal(err)
	}
	jsonValue = bytes.TrimSpace(jsonValue)
	protoDec, err := New(config.Codec{Format: config.FormatProtobuf, SchemaFile: protoSetFile, ProtoMessage: "shop.v1.Product"})
	if err != nil {
		b.Fatal(err)
	}
	protoBin, _ := goldenProduct(b, protoFiles(b))
	protoSize := strconv.Itoa(len(protoBin)) + "B"
	benches := []struct {
		name string
		dec  Decoder
		src  []byte
	}{
		{"json", mustNew(b, config.FormatJSON), jsonValue},
		{"string", mustNew(b, config.FormatString), []byte("SKU-000042")},
		{"bytes", mustNew(b, config.FormatBytes), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16)},
		{"int", mustNew(b, config.FormatInt), []byte{0, 0, 0x30, 0x39}},
		{"long", mustNew(b, config.FormatLong), []byte{0, 0, 0, 0, 0, 0, 0x30, 0x39}},
		{"avro/" + strconv.Itoa(len(small)) + "B", avroDec, small},
		{"avro/" + strconv.Itoa(len(large)) + "B", avroDec, large},
		{"avro-map/" + strconv.Itoa(len(small)) + "B", avroMapDecoder{schema}, small},
		{"avro-map/" + strconv.Itoa(len(large)) + "B", avroMapDecoder{schema}, large},
		{"protobuf/" + protoSize, protoDec, protoBin},
		{"protobuf-dynamic/" + protoSize, protoDynamicDecoder{protoDec.(*protoDecoder).msg}, protoBin},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			dst, err := bb.dec.AppendJSON(ctx, nil, bb.src)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.src)))
			for b.Loop() {
				if dst, err = bb.dec.AppendJSON(ctx, dst[:0], bb.src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// protoDynamicDecoder is the dynamicpb+protojson route the Protobuf
// transcoder replaced (and still the route for what it does not cover).
type protoDynamicDecoder struct{ p *protoMessage }

func (d protoDynamicDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	return d.p.appendJSONDynamic(dst, src)
}

func mustNew(tb testing.TB, f config.Format) Decoder {
	tb.Helper()
	d, err := New(config.Codec{Format: f})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
