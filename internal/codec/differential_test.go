package codec

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/twmb/avro"
)

// kitchenGen writes random, valid Avro for kitchenSchema, with the odd
// corners of the encoding (multi-block and sized blocks, NaNs, invalid
// UTF-8, extreme integers) turning up often.
type kitchenGen struct {
	rnd  *rand.Rand
	root *anode
}

func newKitchenGen(seed uint64) *kitchenGen {
	d, err := newAvro(avro.MustParse(kitchenSchema))
	if err != nil {
		panic(err)
	}
	return &kitchenGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), root: d.root}
}

func (g *kitchenGen) value() []byte { return g.gen(nil, g.root, 0) }

func (g *kitchenGen) long() int64 {
	switch g.rnd.IntN(6) {
	case 0:
		return 0
	case 1:
		return math.MaxInt64 - g.rnd.Int64N(3)
	case 2:
		return math.MinInt64 + g.rnd.Int64N(3)
	case 3:
		return g.rnd.Int64N(200) - 100
	}
	return int64(g.rnd.Uint64())
}

func (g *kitchenGen) raw(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		switch g.rnd.IntN(4) {
		case 0:
			b[i] = byte(g.rnd.Uint32())
		default:
			b[i] = byte('a' + g.rnd.IntN(26))
		}
	}
	if n > 0 && g.rnd.IntN(4) == 0 {
		copy(b, "é\"\\\n\u2028")
	}
	return b
}

// blocks writes count items as one or more blocks, some with a byte size.
func (g *kitchenGen) blocks(dst []byte, count int, item func([]byte) []byte) []byte {
	for count > 0 {
		n := 1 + g.rnd.IntN(count)
		var block []byte
		for range n {
			block = item(block)
		}
		if g.rnd.IntN(3) == 0 {
			dst = append(dst, zz(-int64(n))...)
			dst = append(dst, zz(int64(len(block)))...)
		} else {
			dst = append(dst, zz(int64(n))...)
		}
		dst = append(dst, block...)
		count -= n
	}
	return append(dst, 0)
}

func (g *kitchenGen) gen(dst []byte, n *anode, depth int) []byte {
	switch n.kind {
	case aNull:
		return dst
	case aBoolean:
		return append(dst, byte(g.rnd.IntN(2)))
	case aInt:
		return append(dst, zz(int64(int32(g.long())))...)
	case aLong:
		return append(dst, zz(g.long())...)
	case aTimeMicros:
		return append(dst, zz(g.rnd.Int64N(86_400_000_000))...)
	case aFloat:
		return binary.LittleEndian.AppendUint32(dst, g.rnd.Uint32())
	case aDouble:
		if g.rnd.IntN(2) == 0 {
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(g.rnd.NormFloat64()*1e6))
		}
		return binary.LittleEndian.AppendUint64(dst, g.rnd.Uint64())
	case aString, aBytes:
		return append(dst, str(string(g.raw(g.rnd.IntN(12))))...)
	case aFixed:
		return append(dst, g.raw(n.size)...)
	case aEnum:
		return append(dst, zz(int64(g.rnd.IntN(len(n.symbols))))...)
	case aUnion:
		i := g.rnd.IntN(len(n.branches))
		if depth > 3 && n.branches[0].kind == aNull {
			i = 0
		}
		return g.gen(append(dst, zz(int64(i))...), n.branches[i], depth+1)
	case aRecord:
		for _, f := range n.fields {
			dst = g.gen(dst, f.node, depth+1)
		}
		return dst
	case aArray:
		return g.blocks(dst, g.rnd.IntN(4), func(b []byte) []byte { return g.gen(b, n.items, depth+1) })
	case aMap:
		return g.blocks(dst, g.rnd.IntN(4), func(b []byte) []byte {
			// Keys are letters: two invalid UTF-8 keys both become
			// "\ufffd" in JSON, and which one the map route writes last is
			// down to Go's map order.
			key := make([]byte, g.rnd.IntN(3))
			for i := range key {
				key[i] = byte('a' + g.rnd.IntN(3))
			}
			b = append(b, str(string(key))...)
			return g.gen(b, n.items, depth+1)
		})
	case aLib:
		// Decimals, kept within the schemas' precision: the library
		// rejects more digits than that.
		if n.libFixed {
			b := g.raw(n.size)
			b[0], b[1] = 0, 0
			if b[2]&0x80 != 0 {
				b[0], b[1] = 0xff, 0xff
			}
			return append(dst, b...)
		}
		return append(dst, str(string(g.raw(g.rnd.IntN(4))))...)
	}
	panic("unknown kind")
}

// TestAvroDifferential holds the transcoder to the map route (decode into
// an any, then twmb/avro's EncodeJSON): on random valid records they give
// the same JSON value, and on damaged records they fail together.
func TestAvroDifferential(t *testing.T) {
	schema := avro.MustParse(kitchenSchema)
	d := mustAvroSchema(t, schema)
	d.latin1 = true // twmb/avro's encoding of bytes, to compare exactly
	b64 := mustAvroSchema(t, schema)
	oracle := avroMapDecoder{schema}
	g := newKitchenGen(1)
	check := func(src []byte) bool {
		t.Helper()
		got, err := d.AppendJSON(context.Background(), nil, src)
		want, werr := oracle.AppendJSON(context.Background(), nil, src)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%x:\ngot  (%s, %v)\nwant (%s, %v)", src, got, err, want, werr)
		}
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("%x: got error %v, want one wrapping ErrDecode", src, err)
			}
			return false
		}
		if !sameJSON(t, got, want) {
			t.Fatalf("%x:\ngot  %s\nwant %s", src, got, want)
		}
		// The service's own output differs only in bytes and fixed
		// values: base64 of the bytes the Avro JSON string holds.
		out, err := b64.AppendJSON(context.Background(), nil, src)
		if err != nil {
			t.Fatalf("%x: base64 mode fails: %v", src, err)
		}
		if p := bytesMapped(normJSON(t, got), normJSON(t, out), ""); p != "" {
			t.Fatalf("%x: base64 mode differs at %s:\nlatin1 %s\nbase64 %s", src, p, got, out)
		}
		return true
	}
	valid, damagedOK := 0, 0
	for range 3000 {
		src := g.value()
		if !check(src) {
			t.Fatalf("%x: a generated record does not decode", src)
		}
		valid++
		// Damage it: cut it short, flip a byte, add a byte.
		if check(src[:g.rnd.IntN(len(src))]) {
			damagedOK++
		}
		flipped := append([]byte(nil), src...)
		flipped[g.rnd.IntN(len(flipped))] ^= byte(1 + g.rnd.IntN(255))
		if check(flipped) {
			damagedOK++
		}
		check(append(src, byte(g.rnd.Uint32())))
	}
	t.Logf("%d valid records agree; %d damaged ones still decoded (to the same value)", valid, damagedOK)
}

// bytesMapped compares the JSON of the latin1 mode (a) with that of the
// base64 mode (b): they must be equal but for strings of code points up to
// U+00FF in a whose bytes, base64-encoded, are b's string. It returns the
// path of the first other difference, or "".
func bytesMapped(a, b any, path string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for k := range x {
			if p := bytesMapped(x[k], y[k], path+"."+k); p != "" {
				return p
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for i := range x {
			if p := bytesMapped(x[i], y[i], path+"["+strconv.Itoa(i)+"]"); p != "" {
				return p
			}
		}
		return ""
	case string:
		y, ok := b.(string)
		if !ok {
			return path
		}
		if x == y {
			return ""
		}
		raw := make([]byte, 0, len(x))
		for _, r := range x {
			if r > 0xff {
				return path
			}
			raw = append(raw, byte(r))
		}
		if base64.StdEncoding.EncodeToString(raw) != y {
			return path
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return path
	}
	return ""
}
