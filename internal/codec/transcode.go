package codec

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/avro"

	"github.com/msk-consumer/msk-consumer/internal/jsonx"
)

// The Avro binary to JSON transcoder. A schema is compiled once into a graph
// of anodes (cyclic for recursive types); a walk over that graph reads the
// wire bytes and appends JSON, allocating nothing but the growth of dst.
//
// It keeps the limits twmb/avro keeps, so that both accept the same inputs:
// lengths and block counts are checked against the bytes that are left
// before anything is read, an array of items that take no wire bytes
// (array<null>) holds at most maxZeroByteItems, and nesting stops at
// maxNesting.

type akind uint8

const (
	aNull akind = iota
	aBoolean
	aInt
	aLong
	aFloat
	aDouble
	aString
	aBytes
	aFixed
	aEnum
	aArray
	aMap
	aRecord
	aUnion
	aTimeMicros // a long that, like twmb/avro, must fit a time.Duration
	aLib        // decoded by twmb/avro through a sub-schema (decimal)
)

// anode is one compiled schema node.
type anode struct {
	kind     akind
	size     int          // fixed: byte size
	symbols  []string     // enum: each symbol as a JSON string
	fields   []afield     // record
	items    *anode       // array items, map values
	branches []*anode     // union
	lib      *avro.Schema // aLib: the node's own schema
	libFixed bool         // aLib: the node is a fixed of size bytes, else bytes
	min      int          // minimum wire bytes of one value; a lower bound for cycles
	minState uint8
}

// afield is one record field: key is its JSON key with the separator, such
// as `,"sku":`, ready to append.
type afield struct {
	key  string
	name string
	node *anode
}

const (
	// maxNesting bounds records, arrays and maps inside one another, so
	// that a recursive schema cannot take the stack with crafted input. It
	// is twmb/avro's own limit.
	maxNesting = 1000
	// maxZeroByteItems caps an array whose items take no wire bytes, whose
	// count is otherwise bounded by nothing (twmb/avro's limit).
	maxZeroByteItems = 4 << 10
	// maxZeroByteItemsTotal caps such items across one whole value, so that
	// an array of arrays of nulls cannot turn each input byte into kilobytes
	// of output. twmb/avro has no such cap; no real record comes near it.
	maxZeroByteItemsTotal = 64 << 10
)

// compileAvro compiles a schema tree from avro.Schema.Root.
func compileAvro(root *avro.SchemaNode) (*anode, error) {
	c := compiler{named: make(map[string]*anode)}
	n, err := c.compile(root, "")
	if err != nil {
		return nil, err
	}
	minBytes(n)
	return n, nil
}

type compiler struct {
	named map[string]*anode
}

// compile compiles n, in which unqualified names are in namespace ns.
func (c *compiler) compile(n *avro.SchemaNode, ns string) (*anode, error) {
	switch n.Type {
	case "null":
		return &anode{kind: aNull}, nil
	case "boolean":
		return &anode{kind: aBoolean}, nil
	case "int":
		return &anode{kind: aInt}, nil
	case "long":
		if n.LogicalType == "time-micros" {
			return &anode{kind: aTimeMicros}, nil
		}
		return &anode{kind: aLong}, nil
	case "float":
		return &anode{kind: aFloat}, nil
	case "double":
		return &anode{kind: aDouble}, nil
	case "string":
		return &anode{kind: aString}, nil
	case "bytes":
		if n.LogicalType == "decimal" || n.LogicalType == "big-decimal" {
			return c.lib(n, &anode{kind: aLib})
		}
		return &anode{kind: aBytes}, nil
	case "fixed":
		if n.Size < 0 {
			return nil, fmt.Errorf("avro schema: fixed %s has negative size %d", n.Name, n.Size)
		}
		a := &anode{kind: aFixed, size: n.Size}
		if n.LogicalType == "decimal" {
			if _, err := c.lib(n, a); err != nil {
				return nil, err
			}
			a.kind, a.libFixed = aLib, true
		}
		c.named[fullName(n)] = a
		return a, nil
	case "enum":
		a := &anode{kind: aEnum, symbols: make([]string, len(n.Symbols))}
		for i, s := range n.Symbols {
			a.symbols[i] = string(jsonx.AppendString(nil, s))
		}
		c.named[fullName(n)] = a
		return a, nil
	case "record", "error":
		a := &anode{kind: aRecord, fields: make([]afield, len(n.Fields))}
		full := fullName(n)
		c.named[full] = a // before the fields: they may refer to it
		inner := namespaceOf(full)
		for i := range n.Fields {
			f := &n.Fields[i]
			fn, err := c.compile(&f.Type, inner)
			if err != nil {
				return nil, err
			}
			key := jsonx.AppendString(nil, f.Name)
			if i > 0 {
				key = append([]byte{','}, key...)
			}
			a.fields[i] = afield{key: string(append(key, ':')), name: f.Name, node: fn}
		}
		return a, nil
	case "array", "map":
		sub := n.Items
		kind := aArray
		if n.Type == "map" {
			sub, kind = n.Values, aMap
		}
		if sub == nil {
			return nil, fmt.Errorf("avro schema: %s without its element type", n.Type)
		}
		in, err := c.compile(sub, ns)
		if err != nil {
			return nil, err
		}
		return &anode{kind: kind, items: in}, nil
	case "union":
		a := &anode{kind: aUnion, branches: make([]*anode, len(n.Branches))}
		for i := range n.Branches {
			b, err := c.compile(&n.Branches[i], ns)
			if err != nil {
				return nil, err
			}
			a.branches[i] = b
		}
		return a, nil
	default:
		// A reference to a named type defined earlier (or enclosing it).
		if strings.Contains(n.Type, ".") {
			if a := c.named[n.Type]; a != nil {
				return a, nil
			}
		} else {
			if ns != "" {
				if a := c.named[ns+"."+n.Type]; a != nil {
					return a, nil
				}
			}
			if a := c.named[n.Type]; a != nil {
				return a, nil
			}
		}
		return nil, fmt.Errorf("avro schema: unknown type %q", n.Type)
	}
}

// lib sets a to decode through twmb/avro with n as its schema: for logical
// types whose JSON form the library computes from a decoded value.
func (c *compiler) lib(n *avro.SchemaNode, a *anode) (*anode, error) {
	s, err := n.Schema()
	if err != nil {
		return nil, fmt.Errorf("avro schema: %s %s: %w", n.Type, n.LogicalType, err)
	}
	a.lib = s
	return a, nil
}

// fullName is the full name of a named type from a Root tree, where the
// namespace is always resolved.
func fullName(n *avro.SchemaNode) string {
	if strings.Contains(n.Name, ".") || n.Namespace == "" {
		return n.Name
	}
	return n.Namespace + "." + n.Name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

// minBytes sets and returns n.min, the minimum wire size of a value of n.
// Within a cycle a node counts as 0 bytes, which keeps it a lower bound; a
// cycle always passes through a union, array or map, which take at least one
// byte, so a node is 0 exactly when its values truly take no bytes.
func minBytes(n *anode) int {
	switch n.minState {
	case 1: // in progress: a cycle
		return 0
	case 2:
		return n.min
	}
	n.minState = 1
	m := 0
	switch n.kind {
	case aNull:
	case aFloat:
		m = 4
	case aDouble:
		m = 8
	case aFixed:
		m = n.size
	case aLib:
		m = 1 // the length of bytes
		if n.libFixed {
			m = n.size
		}
	case aRecord:
		for _, f := range n.fields {
			m = min(m+minBytes(f.node), math.MaxInt32)
		}
	case aUnion:
		b := math.MaxInt32
		for _, br := range n.branches {
			b = min(b, minBytes(br))
		}
		if len(n.branches) == 0 {
			b = 0
		}
		m = 1 + b
	case aArray, aMap:
		minBytes(n.items)
		m = 1
	default: // boolean, int, long, string, bytes, enum: one byte at least
		m = 1
	}
	n.min, n.minState = m, 2
	return m
}

// wireError is a failure inside the walk. The path is built on the way out,
// innermost first, only when decoding has failed.
type wireError struct {
	msg  string // empty when err says it all
	err  error  // io.ErrUnexpectedEOF when the input ends inside a value
	path []string
}

func (e *wireError) Error() string {
	parts := make([]string, 0, 3)
	for _, s := range []string{e.pathString(), e.msg} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if e.msg == "" && e.err != nil {
		parts = append(parts, e.err.Error())
	}
	return strings.Join(parts, ": ")
}

func (e *wireError) Unwrap() error { return e.err }

func (e *wireError) pathString() string {
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		s := e.path[i]
		if b.Len() > 0 && s[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// at adds a path segment to a walk error.
func at(err error, seg string) error {
	if we, ok := err.(*wireError); ok {
		we.path = append(we.path, seg)
	}
	return err
}

func short(what string, need, have int) error {
	if need > 0 {
		return &wireError{msg: fmt.Sprintf("%s needs %d bytes, %d left", what, need, have), err: io.ErrUnexpectedEOF}
	}
	return &wireError{msg: "input ends inside " + what, err: io.ErrUnexpectedEOF}
}

func malformed(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...)}
}

// walkState is the state of one decode.
type walkState struct {
	depth     int
	zeroItems int
	// latin1 writes bytes and fixed as Avro's own JSON encoding does (a
	// string of code points U+0000 to U+00FF) rather than as base64. Only
	// the differential test sets it, to compare with twmb/avro exactly.
	latin1 bool
}

// walk appends the JSON form of the value of n at the start of src and
// returns the rest of src.
func (st *walkState) walk(dst, src []byte, n *anode) ([]byte, []byte, error) {
	switch n.kind {
	case aNull:
		return append(dst, "null"...), src, nil

	case aBoolean:
		if len(src) == 0 {
			return dst, nil, short("boolean", 1, 0)
		}
		// Only 1 is true, as in Java and twmb/avro.
		if src[0] == 1 {
			return append(dst, "true"...), src[1:], nil
		}
		return append(dst, "false"...), src[1:], nil

	case aInt:
		v, rest, err := readInt(src)
		if err != nil {
			return dst, nil, err
		}
		return strconv.AppendInt(dst, int64(v), 10), rest, nil

	case aLong:
		v, rest, err := readLong(src)
		if err != nil {
			return dst, nil, err
		}
		return strconv.AppendInt(dst, v, 10), rest, nil

	case aTimeMicros:
		v, rest, err := readLong(src)
		if err != nil {
			return dst, nil, err
		}
		if v > math.MaxInt64/int64(time.Microsecond) || v < math.MinInt64/int64(time.Microsecond) {
			return dst, nil, malformed("time-micros value %d overflows a duration", v)
		}
		return strconv.AppendInt(dst, v, 10), rest, nil

	case aFloat:
		if len(src) < 4 {
			return dst, nil, short("float", 4, len(src))
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32(src))
		return appendFloat(dst, float64(f), 32), src[4:], nil

	case aDouble:
		if len(src) < 8 {
			return dst, nil, short("double", 8, len(src))
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(src))
		return appendFloat(dst, f, 64), src[8:], nil

	case aString:
		b, rest, err := readBytes(src, "string")
		if err != nil {
			return dst, nil, err
		}
		return jsonx.AppendString(dst, b), rest, nil

	case aBytes:
		b, rest, err := readBytes(src, "bytes")
		if err != nil {
			return dst, nil, err
		}
		if st.latin1 {
			return appendAvroBytes(dst, b), rest, nil
		}
		return appendBase64(dst, b), rest, nil

	case aFixed:
		if len(src) < n.size {
			return dst, nil, short("fixed", n.size, len(src))
		}
		if st.latin1 {
			return appendAvroBytes(dst, src[:n.size]), src[n.size:], nil
		}
		return appendBase64(dst, src[:n.size]), src[n.size:], nil

	case aEnum:
		i, rest, err := readInt(src)
		if err != nil {
			return dst, nil, err
		}
		if i < 0 || int(i) >= len(n.symbols) {
			return dst, nil, malformed("enum index %d out of range [0, %d)", i, len(n.symbols))
		}
		return append(dst, n.symbols[i]...), rest, nil

	case aUnion:
		i, rest, err := readInt(src)
		if err != nil {
			return dst, nil, err
		}
		if i < 0 || int(i) >= len(n.branches) {
			return dst, nil, malformed("union index %d out of range [0, %d)", i, len(n.branches))
		}
		return st.walk(dst, rest, n.branches[i])

	case aRecord:
		if st.depth++; st.depth > maxNesting {
			return dst, nil, malformed("nesting deeper than %d", maxNesting)
		}
		dst = append(dst, '{')
		var err error
		for i := range n.fields {
			f := &n.fields[i]
			dst = append(dst, f.key...)
			if dst, src, err = st.walk(dst, src, f.node); err != nil {
				return dst, nil, at(err, f.name)
			}
		}
		st.depth--
		return append(dst, '}'), src, nil

	case aArray:
		return st.walkArray(dst, src, n)

	case aMap:
		return st.walkMap(dst, src, n)

	case aLib:
		var v any
		rest, err := n.lib.Decode(src, &v)
		if err != nil {
			return dst, nil, &wireError{err: err}
		}
		if dst, err = n.lib.AppendEncodeJSON(dst, v); err != nil {
			return dst, nil, &wireError{err: err}
		}
		return dst, rest, nil
	}
	return dst, nil, fmt.Errorf("codec: unknown avro node kind %d", n.kind)
}

func (st *walkState) walkArray(dst, src []byte, n *anode) ([]byte, []byte, error) {
	if st.depth++; st.depth > maxNesting {
		return dst, nil, malformed("nesting deeper than %d", maxNesting)
	}
	dst = append(dst, '[')
	itemMin := n.items.min
	total := 0
	for {
		count, rest, err := readBlockCount(src)
		if err != nil {
			return dst, nil, err
		}
		src = rest
		if count == 0 {
			break
		}
		if itemMin > 0 {
			if count > int64(len(src)/itemMin) {
				return dst, nil, malformed("array block of %d items cannot fit in the %d bytes left", count, len(src))
			}
		} else {
			if count > int64(maxZeroByteItems-total) {
				return dst, nil, malformed("array of items that take no bytes has more than %d items", maxZeroByteItems)
			}
			if st.zeroItems += int(count); st.zeroItems > maxZeroByteItemsTotal {
				return dst, nil, malformed("more than %d items that take no bytes", maxZeroByteItemsTotal)
			}
		}
		for range count {
			if total > 0 {
				dst = append(dst, ',')
			}
			if dst, src, err = st.walk(dst, src, n.items); err != nil {
				return dst, nil, at(err, "["+strconv.Itoa(total)+"]")
			}
			total++
		}
	}
	st.depth--
	return append(dst, ']'), src, nil
}

func (st *walkState) walkMap(dst, src []byte, n *anode) ([]byte, []byte, error) {
	if st.depth++; st.depth > maxNesting {
		return dst, nil, malformed("nesting deeper than %d", maxNesting)
	}
	dst = append(dst, '{')
	entryMin := 1 + n.items.min // the key's length takes a byte at least
	first := true
	for {
		count, rest, err := readBlockCount(src)
		if err != nil {
			return dst, nil, err
		}
		src = rest
		if count == 0 {
			break
		}
		if count > int64(len(src)/entryMin) {
			return dst, nil, malformed("map block of %d entries cannot fit in the %d bytes left", count, len(src))
		}
		for range count {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			var key []byte
			if key, src, err = readBytes(src, "map key"); err != nil {
				return dst, nil, err
			}
			dst = jsonx.AppendString(dst, key)
			dst = append(dst, ':')
			if dst, src, err = st.walk(dst, src, n.items); err != nil {
				return dst, nil, at(err, "["+strconv.QuoteToASCII(truncate(string(key), 64))+"]")
			}
		}
	}
	st.depth--
	return append(dst, '}'), src, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// readBlockCount reads an array or map block header: a count, and when the
// count is negative, the block's size in bytes, which is not needed here.
func readBlockCount(src []byte) (int64, []byte, error) {
	count, src, err := readLong(src)
	if err != nil {
		return 0, nil, err
	}
	if count < 0 {
		if count == math.MinInt64 {
			return 0, nil, malformed("invalid block count %d", count)
		}
		count = -count
		if _, src, err = readLong(src); err != nil {
			return 0, nil, err
		}
	}
	return count, src, nil
}

// readBytes reads a length-prefixed string or bytes and returns it without
// copying.
func readBytes(src []byte, what string) ([]byte, []byte, error) {
	n, src, err := readLong(src)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 {
		return nil, nil, malformed("negative %s length %d", what, n)
	}
	if n > int64(len(src)) {
		return nil, nil, short(what, int(min(n, math.MaxInt)), len(src))
	}
	return src[:n], src[n:], nil
}

// readInt reads a zig-zag varint of at most 32 bits.
func readInt(src []byte) (int32, []byte, error) {
	if len(src) > 0 && src[0] < 0x80 {
		u := uint32(src[0])
		return int32(u>>1) ^ -int32(u&1), src[1:], nil
	}
	var u uint32
	for i := range 5 {
		if i >= len(src) {
			return 0, nil, short("int", 0, len(src))
		}
		b := src[i]
		if i == 4 {
			if b > 0x0f {
				return 0, nil, malformed("int varint overflows 32 bits")
			}
			u |= uint32(b) << 28
			return int32(u>>1) ^ -int32(u&1), src[5:], nil
		}
		u |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return int32(u>>1) ^ -int32(u&1), src[i+1:], nil
		}
	}
	panic("unreachable")
}

// readLong reads a zig-zag varint of at most 64 bits.
func readLong(src []byte) (int64, []byte, error) {
	if len(src) > 0 && src[0] < 0x80 {
		u := uint64(src[0])
		return int64(u>>1) ^ -int64(u&1), src[1:], nil
	}
	var u uint64
	for i := range 10 {
		if i >= len(src) {
			return 0, nil, short("long", 0, len(src))
		}
		b := src[i]
		if i == 9 {
			if b > 0x01 {
				return 0, nil, malformed("long varint overflows 64 bits")
			}
			u |= uint64(b) << 63
			return int64(u>>1) ^ -int64(u&1), src[10:], nil
		}
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1), src[i+1:], nil
		}
	}
	panic("unreachable")
}

// appendFloat appends f as twmb/avro's JSON does: the shortest form that
// reads back to the same float32 or float64, and NaN and the infinities as
// the strings "NaN", "Infinity" and "-Infinity" (the Java convention), which
// JSON has no numbers for.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendBase64 appends b as a JSON string of standard, padded base64: what
// the operator contract promises for bytes, and what Protobuf's canonical
// JSON does for bytes too.
func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = appendBase64Std(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendAvroBytes appends b as the Avro JSON encoding of bytes, as Java and
// twmb/avro write it: a string whose code points U+0000 to U+00FF are the
// bytes, printable ASCII as it is and everything else as \u00XX.
func appendAvroBytes(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20 && c <= 0x7e:
			dst = append(dst, c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(dst, '"')
}
