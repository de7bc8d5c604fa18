package codec

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msk-consumer/msk-consumer/config"
)

// The golden vectors of every format (avro, protobuf, json) x framing
// (none, confluent, glue, glue with zlib) x side (key, value) live in
// testdata/golden/, with the registry content they need in
// testdata/golden/registry.json. TestGenerateGolden -update writes them
// with encoders independent of the code under test: twmb/avro for Avro
// (and a version-1 writer schema for the evolved vectors), dynamicpb for
// Protobuf, pkg/sr's Serde for the Confluent wire format, and compress/zlib
// for Glue. The expected JSON is built from the sample values by hand.
//
//	go test -run TestGenerateGolden -update ./internal/codec/

const (
	protoFile      = "testdata/product.proto"
	protoSetFile   = "testdata/product.pb"
	productV1File  = "testdata/product_v1.avsc"
	productKeyFile = "testdata/product_key.avsc"
	goldenDir      = "testdata/golden"
)

// The Glue schema version ids of the golden registry.
var glueVersions = map[string]string{
	"avro-value":     "0d4c2e36-3a57-4d0c-9a0e-000000000001",
	"avro-value-v1":  "0d4c2e36-3a57-4d0c-9a0e-000000000002",
	"avro-key":       "0d4c2e36-3a57-4d0c-9a0e-000000000003",
	"protobuf":       "0d4c2e36-3a57-4d0c-9a0e-000000000004",
	"json":           "0d4c2e36-3a57-4d0c-9a0e-000000000005",
	"json-key":       "0d4c2e36-3a57-4d0c-9a0e-000000000006",
	"unknown-schema": "0d4c2e36-3a57-4d0c-9a0e-0000000000ff",
}

// The Confluent schema ids of the golden registry.
const (
	idAvroValue   = 1
	idAvroValueV1 = 2
	idAvroKey     = 3
	idProto       = 4
	idJSON        = 5
	idJSONKey     = 6
)

// The JSON Schemas of the golden registry: records are validated against
// them.
const (
	jsonValueSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id","sku"],"properties":{"id":{"type":"integer"},"sku":{"type":"string","pattern":"^SKU-"},"tags":{"type":"array","items":{"type":"string"}}}}`
	jsonKeySchema   = `{"type":"string"}`
)

// goldenRegistry is testdata/golden/registry.json.
type goldenRegistry struct {
	Confluent []goldenConfluent `json:"confluent"`
	Glue      []goldenGlue      `json:"glue"`
	Vectors   []goldenVector    `json:"vectors"`
}

type goldenConfluent struct {
	ID      int    `json:"id"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
	Type    string `json:"type"`
	Schema  string `json:"schema"`
}

type goldenGlue struct {
	Version    string `json:"version"`
	DataFormat string `json:"data_format"`
	Definition string `json:"definition"`
}

// goldenVector is one vector: name.bin decodes to name.json with this
// codec configuration.
type goldenVector struct {
	Name         string          `json:"name"`
	Format       config.Format   `json:"format"`
	Registry     config.Registry `json:"registry"`
	SchemaFile   string          `json:"schema_file,omitempty"`
	ProtoMessage string          `json:"proto_message,omitempty"`
}

func (v goldenVector) codec() config.Codec {
	return config.Codec{Format: v.Format, Registry: v.Registry, SchemaFile: v.SchemaFile, ProtoMessage: v.ProtoMessage}
}

// protoFiles compiles testdata/product.proto.
func protoFiles(tb testing.TB) protoreflect.FileDescriptor {
	tb.Helper()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{})}
	files, err := c.Compile(context.Background(), protoFile)
	if err != nil {
		tb.Fatal(err)
	}
	return files[0]
}

func protoMsg(tb testing.TB, fd protoreflect.FileDescriptor, name string) protoreflect.MessageDescriptor {
	tb.Helper()
	md := fd.Messages().ByName(protoreflect.Name(name))
	if md == nil {
		tb.Fatalf("no message %s", name)
	}
	return md
}

// goldenProduct builds the Protobuf product and its expected JSON.
func goldenProduct(tb testing.TB, fd protoreflect.FileDescriptor) ([]byte, map[string]any) {
	md := protoMsg(tb, fd, "Product")
	m := dynamicpb.NewMessage(md)
	f := md.Fields().ByName
	m.Set(f("id"), protoreflect.ValueOfInt64(9_007_199_254_740_993))
	m.Set(f("sku"), protoreflect.ValueOfString("SKU-000042"))
	m.Set(f("name"), protoreflect.ValueOfString("Espresso machine \"Duo\" \u00e9"))
	money := dynamicpb.NewMessage(md.Messages().ByName("Money"))
	mf := money.Descriptor().Fields().ByName
	money.Set(mf("currency"), protoreflect.ValueOfString("EUR"))
	money.Set(mf("units"), protoreflect.ValueOfInt64(249))
	money.Set(mf("nanos"), protoreflect.ValueOfInt32(990_000_000))
	m.Set(f("price"), protoreflect.ValueOfMessage(money))
	tags := m.Mutable(f("tags")).List()
	for _, s := range []string{"kitchen", "coffee"} {
		tags.Append(protoreflect.ValueOfString(s))
	}
	attrs := m.Mutable(f("attributes")).Map()
	attrs.Set(protoreflect.ValueOfString("color").MapKey(), protoreflect.ValueOfString("silver"))
	attrs.Set(protoreflect.ValueOfString("voltage").MapKey(), protoreflect.ValueOfString("230V"))
	m.Set(f("description"), protoreflect.ValueOfString(""))
	ts := timestamppb.New(time.Date(2026, 11, 22, 11, 30, 0, 123e6, time.UTC))
	tsm := dynamicpb.NewMessage(f("updated_at").Message())
	tsm.Set(tsm.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(ts.Seconds))
	tsm.Set(tsm.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(ts.Nanos))
	m.Set(f("updated_at"), protoreflect.ValueOfMessage(tsm))
	m.Set(f("checksum"), protoreflect.ValueOfBytes([]byte{0, 0xff, 'a'}))
	m.Set(f("status"), protoreflect.ValueOfEnum(1))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b, map[string]any{
		"id": "9007199254740993", "sku": "SKU-000042", "name": "Espresso machine \"Duo\" \u00e9",
		"price": map[string]any{"currency": "EUR", "units": "249", "nanos": 990000000},
		"tags":  []string{"kitchen", "coffee"}, "attributes": map[string]string{"color": "silver", "voltage": "230V"},
		"description": "", "updated_at": "2026-11-22T11:30:00.123Z",
		"checksum": base64.StdEncoding.EncodeToString([]byte{0, 0xff, 'a'}), "status": "ACTIVE",
	}
}

func goldenProtoKey(tb testing.TB, fd protoreflect.FileDescriptor) ([]byte, map[string]any) {
	m := dynamicpb.NewMessage(protoMsg(tb, fd, "ProductKey"))
	m.Set(m.Descriptor().Fields().ByName("sku"), protoreflect.ValueOfString("SKU-000042"))
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b, map[string]any{"sku": "SKU-000042"}
}

type avroKey struct {
	SKU      string `avro:"sku"`
	Checksum []byte `avro:"checksum"`
}

type productV1 struct {
	ID         int64             `avro:"id"`
	SKU        string            `avro:"sku"`
	Name       string            `avro:"name"`
	Price      float32           `avro:"price"`
	Currency   string            `avro:"currency"`
	Tags       []string          `avro:"tags"`
	Attributes map[string]string `avro:"attributes"`
	UpdatedAt  time.Time         `avro:"updated_at"`
}

// glueFrame frames payload for Glue, compressed with zlib when asked.
func glueFrame(tb testing.TB, version string, payload []byte, compress bool) []byte {
	tb.Helper()
	id := parseUUID(tb, version)
	out := []byte{3, 0} // header version 3, no compression
	if compress {
		out[1] = 5 // zlib
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(payload)
		w.Close()
		payload = z.Bytes()
	}
	out = append(out, id[:]...)
	return append(out, payload...)
}

func parseUUID(tb testing.TB, s string) [16]byte {
	var u [16]byte
	b, err := hexDecode(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		tb.Fatalf("bad uuid %q", s)
	}
	copy(u[:], b)
	return u
}

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

func TestGenerateGolden_Registry(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/")
	}
	fd := protoFiles(t)
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		for i := range f.Imports().Len() {
			add(f.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(fd)
	pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(protoSetFile, pb, 0o644))

	read := func(p string) string {
		b, err := os.ReadFile(p)
		must(t, err)
		return string(b)
	}
	avroValue, avroV1, avroKeyS, protoText := read(productSchemaFile), read(productV1File), read(productKeyFile), read(protoFile)
	reg := goldenRegistry{
		Confluent: []goldenConfluent{
			{ID: idAvroValue, Subject: "products-value", Version: 2, Type: "AVRO", Schema: avroValue},
			{ID: idAvroValueV1, Subject: "products-value", Version: 1, Type: "AVRO", Schema: avroV1},
			{ID: idAvroKey, Subject: "products-key", Version: 1, Type: "AVRO", Schema: avroKeyS},
			{ID: idProto, Subject: "products-proto-value", Version: 1, Type: "PROTOBUF", Schema: protoText},
			{ID: idJSON, Subject: "products-json-value", Version: 1, Type: "JSON", Schema: jsonValueSchema},
			{ID: idJSONKey, Subject: "products-json-key", Version: 1, Type: "JSON", Schema: jsonKeySchema},
		},
		Glue: []goldenGlue{
			{Version: glueVersions["avro-value"], DataFormat: "AVRO", Definition: avroValue},
			{Version: glueVersions["avro-value-v1"], DataFormat: "AVRO", Definition: avroV1},
			{Version: glueVersions["avro-key"], DataFormat: "AVRO", Definition: avroKeyS},
			{Version: glueVersions["protobuf"], DataFormat: "PROTOBUF", Definition: protoText},
			{Version: glueVersions["json"], DataFormat: "JSON", Definition: jsonValueSchema},
			{Version: glueVersions["json-key"], DataFormat: "JSON", Definition: jsonKeySchema},
		},
	}

	// Payloads and expected JSON, side by side.
	small := goldenBin(t, "small")
	smallJSON := productSamples["small"].expectedJSON()
	v1 := productV1{ID: 7, SKU: "SKU-7", Name: "Old writer", Price: 249.5, Currency: "USD",
		Tags: []string{"legacy"}, Attributes: map[string]string{"color": "red"}, UpdatedAt: time.UnixMilli(1700000000123).UTC()}
	v1Bin, err := avro.MustParse(avroV1).Encode(&v1)
	must(t, err)
	v1JSON := mustJSON(t, map[string]any{"id": 7, "sku": "SKU-7", "name": "Old writer", "price": 249.5, "currency": "USD",
		"tags": []string{"legacy"}, "attributes": map[string]string{"color": "red"}, "description": nil, "updated_at": 1700000000123})
	key := avroKey{SKU: "SKU-000042", Checksum: []byte{0, 0xff, 'a', '"'}}
	keyBin, err := avro.MustParse(avroKeyS).Encode(&key)
	must(t, err)
	keyJSON := mustJSON(t, map[string]any{"sku": "SKU-000042", "checksum": base64.StdEncoding.EncodeToString(key.Checksum)})
	protoBin, protoExp := goldenProduct(t, fd)
	protoKeyBin, protoKeyExp := goldenProtoKey(t, fd)
	jsonValue := []byte(`{"id":42,"sku":"SKU-000042","tags":["a"],"nested":{"x":[1,2.5,null,true]}}`)
	jsonKey := []byte(`"SKU-000042"`)

	// The Confluent wire format, written by pkg/sr's Serde.
	enc := func(b []byte) func(any) ([]byte, error) {
		return func(any) ([]byte, error) { return b, nil }
	}
	confluent := func(id int, payload []byte, index ...int) []byte {
		var s sr.Serde
		s.Register(id, struct{}{}, sr.EncodeFn(enc(payload)), sr.Index(index...))
		b, err := s.Encode(struct{}{})
		must(t, err)
		return b
	}

	type vec struct {
		goldenVector
		bin  []byte
		want []byte
	}
	var vecs []vec
	addAll := func(side string, f config.Format, schemaFile, msg string, plain []byte, want []byte,
		cid int, cidx []int, glueVer string, glueIdx int) {
		base := side + "_" + string(f)
		gv := func(name string, r config.Registry, sf string) goldenVector {
			return goldenVector{Name: name, Format: f, Registry: r, SchemaFile: sf, ProtoMessage: msg}
		}
		gluePayload := plain
		if f == config.FormatProtobuf {
			gluePayload = append(binary.AppendUvarint(nil, uint64(glueIdx)), plain...)
		}
		vecs = append(vecs,
			vec{gv(base+"_none", config.RegistryNone, schemaFile), plain, want},
			vec{gv(base+"_confluent", config.RegistryConfluent, schemaFile), confluent(cid, plain, cidx...), want},
			vec{gv(base+"_glue", config.RegistryGlue, schemaFile), glueFrame(t, glueVer, gluePayload, false), want},
			vec{gv(base+"_glue_zlib", config.RegistryGlue, schemaFile), glueFrame(t, glueVer, gluePayload, true), want},
		)
		if f == config.FormatProtobuf || f == config.FormatAvro {
			// The schema from the registry alone, no local file.
			vecs = append(vecs,
				vec{gv(base+"_confluent_registry_only", config.RegistryConfluent, ""), confluent(cid, plain, cidx...), want},
				vec{gv(base+"_glue_registry_only", config.RegistryGlue, ""), glueFrame(t, glueVer, gluePayload, true), want},
			)
		}
	}
	addAll("value", config.FormatAvro, productSchemaFile, "", small, smallJSON, idAvroValue, nil, glueVersions["avro-value"], 0)
	addAll("key", config.FormatAvro, productKeyFile, "", keyBin, keyJSON, idAvroKey, nil, glueVersions["avro-key"], 0)
	// Product is message [1] of the file for Confluent; for Glue, the
	// messages sorted by full name are Product, Product.Money, ProductKey.
	addAll("value", config.FormatProtobuf, protoSetFile, "shop.v1.Product", protoBin, mustJSON(t, protoExp), idProto, []int{1}, glueVersions["protobuf"], 0)
	addAll("key", config.FormatProtobuf, protoSetFile, "shop.v1.ProductKey", protoKeyBin, mustJSON(t, protoKeyExp), idProto, []int{0}, glueVersions["protobuf"], 2)
	addAll("value", config.FormatJSON, "", "", jsonValue, jsonValue, idJSON, nil, glueVersions["json"], 0)
	addAll("key", config.FormatJSON, "", "", jsonKey, jsonKey, idJSONKey, nil, glueVersions["json-key"], 0)
	// Avro evolution: written with version 1, read as product.avsc.
	vecs = append(vecs,
		vec{goldenVector{Name: "value_avro_confluent_evolved", Format: config.FormatAvro, Registry: config.RegistryConfluent, SchemaFile: productSchemaFile},
			confluent(idAvroValueV1, v1Bin), v1JSON},
		vec{goldenVector{Name: "value_avro_glue_evolved", Format: config.FormatAvro, Registry: config.RegistryGlue, SchemaFile: productSchemaFile},
			glueFrame(t, glueVersions["avro-value-v1"], v1Bin, true), v1JSON},
	)

	old, _ := filepath.Glob(filepath.Join(goldenDir, "*"))
	for _, p := range old {
		must(t, os.Remove(p))
	}
	for _, v := range vecs {
		reg.Vectors = append(reg.Vectors, v.goldenVector)
		must(t, os.WriteFile(filepath.Join(goldenDir, v.Name+".bin"), v.bin, 0o644))
		must(t, os.WriteFile(filepath.Join(goldenDir, v.Name+".json"), append(bytes.TrimSpace(v.want), '\n'), 0o644))
	}
	sort.Slice(reg.Vectors, func(i, j int) bool { return reg.Vectors[i].Name < reg.Vectors[j].Name })
	b, err := json.MarshalIndent(reg, "", "  ")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(goldenDir, "registry.json"), append(b, '\n'), 0o644))
	t.Logf("%d vectors", len(vecs))
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	must(tb, err)
	return b
}

func loadGoldenRegistry(tb testing.TB) goldenRegistry {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, "registry.json"))
	if err != nil {
		tb.Fatalf("%v (run TestGenerateGolden -update)", err)
	}
	var g goldenRegistry
	must(tb, json.Unmarshal(b, &g))
	return g
}

// TestGoldenRegistry decodes every golden vector with decoders built by
// NewKeyValue against a fake Confluent registry and a fake Glue endpoint
// that hold testdata/golden/registry.json.
func TestGoldenRegistry(t *testing.T) {
	g := loadGoldenRegistry(t)
	if len(g.Vectors) < 30 {
		t.Fatalf("got %d golden vectors, want every format x framing x side", len(g.Vectors))
	}
	cf := newFakeConfluent(t, g)
	gl := newFakeGlue(t, g)
	for _, v := range g.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			bin, err := os.ReadFile(filepath.Join(goldenDir, v.Name+".bin"))
			must(t, err)
			want, err := os.ReadFile(filepath.Join(goldenDir, v.Name+".json"))
			must(t, err)
			cfg := config.Config{Registry: config.SchemaRegistry{URL: cf.URL()}, Key: config.Codec{Format: config.FormatString}}
			cfg.Value = v.codec()
			_, dec, err := NewKeyValue(context.Background(), cfg, Options{Glue: gl.client(t)})
			must(t, err)
			prefix := []byte("prefix:")
			got, err := dec.AppendJSON(context.Background(), prefix, bin)
			if err != nil {
				t.Fatalf("got error %v, want %s", err, want)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("got %q, want it to start with what dst held", got)
			}
			if !sameJSON(t, got[len(prefix):], want) {
				t.Errorf("got %s, want %s", got[len(prefix):], want)
			}
			// Any byte cut off the end of Avro is a decode failure,
			// never a record with fields missing. (Protobuf and JSON can
			// end validly at a field boundary, so they are left out.)
			if v.Format == config.FormatAvro {
				for cut := 1; cut <= min(len(bin), 3); cut++ {
					if out, err := dec.AppendJSON(context.Background(), nil, bin[:len(bin)-cut]); err == nil {
						t.Errorf("cut %d: got %s, want a decode error", cut, out)
					}
				}
			}
		})
	}
}
