package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// kitchenProto compiles testdata/kitchen.proto and returns kitchen.v1.Kitchen.
func kitchenProto(tb testing.TB) protoreflect.MessageDescriptor {
	tb.Helper()
	src, err := os.ReadFile("testdata/kitchen.proto")
	if err != nil {
		tb.Fatal(err)
	}
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"kitchen.proto": string(src)}),
	})}
	files, err := c.Compile(context.Background(), "kitchen.proto")
	if err != nil {
		tb.Fatal(err)
	}
	return files[0].Messages().ByName("Kitchen")
}

// pbGen writes random wire bytes for a message: mostly valid, with the
// corners of the encoding turning up often (repeated occurrences of
// singular fields, packed and unpacked lists, oneof switches, unknown
// fields, wrong wire types, invalid UTF-8, out-of-range timestamps).
type pbGen struct{ rnd *rand.Rand }

func (g *pbGen) u64() uint64 {
	switch g.rnd.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64 - g.rnd.Uint64N(3)
	case 2:
		return 1<<63 + g.rnd.Uint64N(3)
	case 3:
		return g.rnd.Uint64N(200)
	case 4:
		return uint64(int64(g.rnd.IntN(200) - 100))
	}
	return g.rnd.Uint64()
}

func (g *pbGen) str() []byte {
	b := make([]byte, g.rnd.IntN(8))
	for i := range b {
		b[i] = byte('a' + g.rnd.IntN(26))
	}
	switch g.rnd.IntN(12) {
	case 0:
		b = append(b, "é\"\\\n\u2028<&"...)
	case 1:
		b = append(b, 0xff) // invalid UTF-8
	}
	return b
}

func (g *pbGen) scalar(dst []byte, fd protoreflect.FieldDescriptor) []byte {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protowire.AppendBytes(dst, g.str())
	case protoreflect.BytesKind:
		b := make([]byte, g.rnd.IntN(10))
		for i := range b {
			b[i] = byte(g.rnd.Uint32())
		}
		return protowire.AppendBytes(dst, b)
	case protoreflect.BoolKind:
		return protowire.AppendVarint(dst, g.rnd.Uint64N(3))
	case protoreflect.EnumKind:
		return protowire.AppendVarint(dst, uint64(int64(g.rnd.IntN(5)-1)))
	case protoreflect.FloatKind:
		if g.rnd.IntN(2) == 0 {
			return protowire.AppendFixed32(dst, math.Float32bits(float32(g.rnd.NormFloat64()*1e3)))
		}
		return protowire.AppendFixed32(dst, g.rnd.Uint32())
	case protoreflect.DoubleKind:
		if g.rnd.IntN(2) == 0 {
			return protowire.AppendFixed64(dst, math.Float64bits(g.rnd.NormFloat64()*1e6))
		}
		return protowire.AppendFixed64(dst, g.rnd.Uint64())
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return protowire.AppendFixed32(dst, uint32(g.u64()))
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return protowire.AppendFixed64(dst, g.u64())
	}
	return protowire.AppendVarint(dst, g.u64())
}

func wireOf(fd protoreflect.FieldDescriptor) protowire.Type {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.FloatKind, protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return protowire.Fixed32Type
	case protoreflect.DoubleKind, protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

func (g *pbGen) message(dst []byte, md protoreflect.MessageDescriptor, depth int) []byte {
	if md.FullName() == "google.protobuf.Timestamp" || md.FullName() == "google.protobuf.Duration" {
		secs := g.rnd.Int64N(4_000_000_000) - 1_000_000_000
		nanos := int64(g.rnd.IntN(1_000_000_000))
		switch g.rnd.IntN(8) {
		case 0:
			secs = int64(g.u64())
		case 1:
			nanos = -nanos
		case 2:
			nanos = nanos / 1_000_000 * 1_000_000
		case 3:
			nanos = 0
		}
		if md.FullName() == "google.protobuf.Duration" && secs < 0 && g.rnd.IntN(4) != 0 {
			nanos = -nanos
		}
		if g.rnd.IntN(4) != 0 {
			dst = protowire.AppendTag(dst, 1, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(secs))
		}
		if g.rnd.IntN(4) != 0 {
			dst = protowire.AppendTag(dst, 2, protowire.VarintType)
			dst = protowire.AppendVarint(dst, uint64(nanos))
		}
		return dst
	}
	fields := md.Fields()
	n := g.rnd.IntN(fields.Len() + 1)
	if depth > 2 {
		n = g.rnd.IntN(3)
	}
	for range n {
		fd := fields.Get(g.rnd.IntN(fields.Len()))
		if fd.Kind() == protoreflect.MessageKind && depth > 4 {
			continue
		}
		for range 1 + g.rnd.IntN(2) {
			dst = g.field(dst, fd, depth)
		}
	}
	switch g.rnd.IntN(10) {
	case 0: // an unknown field
		dst = protowire.AppendTag(dst, protowire.Number(60+g.rnd.IntN(5)), protowire.VarintType)
		dst = protowire.AppendVarint(dst, g.u64())
	case 1:
		dst = protowire.AppendTag(dst, 61, protowire.BytesType)
		dst = protowire.AppendBytes(dst, g.str())
	case 2: // a known field with another wire type
		fd := fields.Get(g.rnd.IntN(fields.Len()))
		wt := protowire.Fixed32Type
		if wireOf(fd) == wt {
			wt = protowire.VarintType
		}
		dst = protowire.AppendTag(dst, fd.Number(), wt)
		if wt == protowire.Fixed32Type {
			dst = protowire.AppendFixed32(dst, g.rnd.Uint32())
		} else {
			dst = protowire.AppendVarint(dst, g.u64())
		}
	case 3: // an unknown group
		dst = protowire.AppendTag(dst, 62, protowire.StartGroupType)
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		dst = protowire.AppendVarint(dst, 7)
		dst = protowire.AppendTag(dst, 62, protowire.EndGroupType)
	}
	return dst
}

func (g *pbGen) field(dst []byte, fd protoreflect.FieldDescriptor, depth int) []byte {
	switch {
	case fd.IsMap():
		for range g.rnd.IntN(4) {
			var e []byte
			if g.rnd.IntN(8) != 0 {
				e = protowire.AppendTag(e, 1, wireOf(fd.MapKey()))
				if fd.MapKey().Kind() == protoreflect.StringKind {
					e = protowire.AppendBytes(e, []byte{byte('a' + g.rnd.IntN(3))})
				} else {
					e = g.scalar(e, fd.MapKey())
				}
			}
			for range g.rnd.IntN(3) {
				e = protowire.AppendTag(e, 2, wireOf(fd.MapValue()))
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					e = protowire.AppendBytes(e, g.message(nil, fd.MapValue().Message(), depth+1))
				} else {
					e = g.scalar(e, fd.MapValue())
				}
			}
			dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
			dst = protowire.AppendBytes(dst, e)
		}
		return dst
	case fd.IsList() && wireOf(fd) != protowire.BytesType && g.rnd.IntN(2) == 0:
		var p []byte
		for range g.rnd.IntN(4) {
			p = g.scalar(p, fd)
		}
		dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
		return protowire.AppendBytes(dst, p)
	case fd.Kind() == protoreflect.MessageKind:
		dst = protowire.AppendTag(dst, fd.Number(), protowire.BytesType)
		return protowire.AppendBytes(dst, g.message(nil, fd.Message(), depth+1))
	}
	dst = protowire.AppendTag(dst, fd.Number(), wireOf(fd))
	return g.scalar(dst, fd)
}

// checkProtoTranscode holds the transcoder to dynamicpb+protojson on src:
// both fail, or both give the same JSON (the same value, and the same
// bytes once protojson's randomized spacing is compacted away).
func checkProtoTranscode(t *testing.T, p *protoMessage, src []byte) bool {
	t.Helper()
	got, err := p.appendJSON([]byte("dst"), src)
	want, werr := p.appendJSONDynamic([]byte("dst"), src)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%x:\ngot  (%s, %v)\nwant (%s, %v)", src, got, err, want, werr)
	}
	if err != nil {
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("%x: got error %v, want one wrapping ErrDecode", src, err)
		}
		if string(got) != "dst" {
			t.Fatalf("%x: got dst %q after an error", src, got)
		}
		return false
	}
	got, want = got[3:], want[3:]
	if !sameJSON(t, got, want) {
		t.Fatalf("%x:\ngot  %s\nwant %s", src, got, want)
	}
	var cg, cw bytes.Buffer
	if json.Compact(&cg, got) != nil || json.Compact(&cw, want) != nil || !bytes.Equal(canonJSON(t, got), canonJSON(t, want)) {
		t.Fatalf("%x: same value, other order:\ngot  %s\nwant %s", src, got, want)
	}
	return true
}

// canonJSON re-encodes b keeping its key order and number text, with
// encoding/json's string escapes: protojson and jsonx escape differently.
func canonJSON(tb testing.TB, b []byte) []byte {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []byte
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			out = append(out, byte(v))
		case string:
			s, _ := json.Marshal(v)
			out = append(out, s...)
		case json.Number:
			out = append(out, v...)
		default:
			s, _ := json.Marshal(v)
			out = append(out, s...)
		}
		out = append(out, ' ')
	}
	return out
}

// TestProtobufDifferential holds the transcoder to dynamicpb+protojson on
// random messages, and on damaged ones: the same JSON, or both fail.
func TestProtobufDifferential(t *testing.T) {
	p := newProtoMessage(kitchenProto(t))
	if p.plan == nil {
		t.Fatal("kitchen.v1.Kitchen has no transcoder plan")
	}
	g := &pbGen{rnd: rand.New(rand.NewPCG(1, 2))}
	valid, damagedOK := 0, 0
	for range 5000 {
		src := g.message(nil, p.md, 0)
		if checkProtoTranscode(t, p, src) {
			valid++
		}
		if len(src) == 0 {
			continue
		}
		if checkProtoTranscode(t, p, src[:g.rnd.IntN(len(src))]) {
			damagedOK++
		}
		flipped := append([]byte(nil), src...)
		flipped[g.rnd.IntN(len(flipped))] ^= byte(1 + g.rnd.IntN(255))
		if checkProtoTranscode(t, p, flipped) {
			damagedOK++
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d of the generated messages decode", valid)
	}
	t.Logf("%d generated messages agree; %d damaged ones still decoded (to the same JSON)", valid, damagedOK)
}

// TestProtobufTranscodeCovers checks which messages take the transcoder
// and which fall back to dynamicpb.
func TestProtobufTranscodeCovers(t *testing.T) {
	files := protoFiles(t)
	for name, want := range map[protoreflect.Name]bool{"Product": true, "ProductKey": true} {
		d := files.Messages().ByName(name)
		if got := newProtoMessage(d).plan != nil; got != want {
			t.Errorf("%s: transcoded %v, want %v", name, got, want)
		}
	}
	src := `syntax = "proto3"; import "google/protobuf/struct.proto"; message S { google.protobuf.Struct s = 1; }`
	ps, err := compileProto(context.Background(), &registrySchema{text: src})
	if err != nil {
		t.Fatal(err)
	}
	if ps.top[0].plan != nil {
		t.Error("a message holding a google.protobuf.Struct has a transcoder plan, want the protojson route")
	}
}

func FuzzProtobufTranscode(f *testing.F) {
	p := newProtoMessage(kitchenProto(f))
	g := &pbGen{rnd: rand.New(rand.NewPCG(3, 4))}
	for range 20 {
		f.Add(g.message(nil, p.md, 0))
	}
	prod := newProtoMessage(protoFiles(f).Messages().ByName("Product"))
	protoBin, _ := goldenProduct(f, protoFiles(f))
	f.Add(protoBin)
	f.Fuzz(func(t *testing.T, src []byte) {
		checkProtoTranscode(t, p, src)
		checkProtoTranscode(t, prod, src)
	})
}

// TestProtobufTranscodeEdges pins inputs the random ones may miss.
func TestProtobufTranscodeEdges(t *testing.T) {
	p := newProtoMessage(kitchenProto(t))
	tag := func(num protowire.Number, wt protowire.Type) []byte { return protowire.AppendTag(nil, num, wt) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, src := range map[string][]byte{
		"field number above the maximum":           cat(tag(protowire.MaxValidNumber+1, protowire.VarintType), []byte{1}),
		"map entry number above the maximum":       cat(tag(28, protowire.BytesType), []byte{6}, tag(protowire.MaxValidNumber+1, protowire.VarintType), []byte{1}),
		"stray end group":                          tag(62, protowire.EndGroupType),
		"unknown group":                            cat(tag(62, protowire.StartGroupType), tag(1, protowire.VarintType), []byte{7}, tag(62, protowire.EndGroupType)),
		"oneof switch back":                        cat(tag(35, protowire.BytesType), []byte{2, 0x10, 5}, tag(34, protowire.BytesType), []byte{1, 'x'}, tag(35, protowire.BytesType), []byte{2, 0x08, 1}),
		"oneof message merged":                     cat(tag(35, protowire.BytesType), []byte{2, 0x10, 5}, tag(35, protowire.BytesType), []byte{3, 0x0a, 1, 'y'}),
		"int32 set to 2^32":                        cat(tag(3, protowire.VarintType), protowire.AppendVarint(nil, 1<<32)),
		"negative zero double":                     cat(tag(1, protowire.Fixed64Type), protowire.AppendFixed64(nil, 1<<63)),
		"packed fixed32 cut short":                 cat(tag(25, protowire.BytesType), []byte{3, 1, 2, 3}),
		"map entry with no key and no value":       cat(tag(29, protowire.BytesType), []byte{0}, tag(30, protowire.BytesType), []byte{0}),
		"duplicate map keys":                       cat(tag(28, protowire.BytesType), []byte{6, 0x0a, 1, 'a', 0x12, 1, 'b'}, tag(28, protowire.BytesType), []byte{6, 0x0a, 1, 'a', 0x12, 1, 'c'}),
		"timestamp out of range":                   cat(tag(41, protowire.BytesType), []byte{11, 0x08}, protowire.AppendVarint(nil, 1<<62)),
		"timestamp at the top of its range":        cat(tag(41, protowire.BytesType), []byte{6, 0x08}, protowire.AppendVarint(nil, 253402300799)),
		"duration with mixed signs":                cat(tag(42, protowire.BytesType), []byte{4, 0x08, 1, 0x10, 0x7f}[:3]),
		"merged message piece cut short":           cat(tag(17, protowire.BytesType), []byte{2, 0x0a, 2}, tag(17, protowire.BytesType), []byte{2, 'a', 'b'}),
		"merged map value piece cut short":         cat(tag(29, protowire.BytesType), []byte{10, 0x08, 1, 0x12, 2, 0x0a, 2, 0x12, 2, 'a', 'b'}),
		"field number 1000":                        cat(tag(1000, protowire.Fixed64Type), protowire.AppendFixed64(nil, 7)),
		"optional at its default":                  cat(tag(37, protowire.VarintType), []byte{0}, tag(38, protowire.BytesType), []byte{0}),
		"implicit string at its default":           cat(tag(14, protowire.BytesType), []byte{1, 'a'}, tag(14, protowire.BytesType), []byte{0}),
		"invalid UTF-8 overwritten by a valid one": cat(tag(14, protowire.BytesType), []byte{1, 0xff}, tag(14, protowire.BytesType), []byte{1, 'a'}),
	} {
		t.Run(name, func(t *testing.T) { checkProtoTranscode(t, p, src) })
	}
}
