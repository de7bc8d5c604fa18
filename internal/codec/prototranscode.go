package codec

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/msk-consumer/msk-consumer/internal/jsonx"
)

// The Protobuf transcoder: wire bytes straight to protojson's JSON (the
// canonical proto3 mapping with the .proto field names), from a plan
// compiled once per message type, with no dynamic message in between.
// TestProtobufDifferential and FuzzProtobufTranscode hold it to the
// dynamicpb+protojson route, which stays for what the plan does not cover:
// messages from proto2 or editions files, and the well-known types other
// than Timestamp and Duration (Any, Struct, Value, wrappers, FieldMask,
// Empty...), anywhere in the message's tree. It follows what proto.Unmarshal
// accepts: a known field with another wire type than its own is an unknown
// field, and unknown fields (groups included) are skipped.

type pbWKT uint8

const (
	pbPlain pbWKT = iota
	pbTimestamp
	pbDuration
)

type pbMsg struct {
	fields  []pbField // in declaration order: protojson's order
	byNum   []int16   // field number -> index+1, for small numbers
	byMap   map[protowire.Number]int
	noneofs int
	wkt     pbWKT
}

type pbField struct {
	name     []byte // `"name":`
	num      protowire.Number
	kind     protoreflect.Kind
	wire     protowire.Type
	list     bool
	packable bool
	is32     bool // a varint kind whose value is its low 32 bits
	presence bool // emitted when set, even at the default value
	oneof    int  // index among the message's oneofs, or -1
	msg      *pbMsg
	key, val *pbField // a map's entry
	enums    map[protoreflect.EnumNumber][]byte
}

func (m *pbMsg) lookup(num protowire.Number) int {
	if int(num) < len(m.byNum) {
		return int(m.byNum[num]) - 1
	}
	if i, ok := m.byMap[num]; ok {
		return i
	}
	return -1
}

var errPlanUnsupported = errors.New("not supported by the transcoder")

// compilePB returns the plan of md, or errPlanUnsupported.
func compilePB(md protoreflect.MessageDescriptor) (*pbMsg, error) {
	return compilePBMsg(md, map[protoreflect.FullName]*pbMsg{})
}

func compilePBMsg(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*pbMsg) (*pbMsg, error) {
	if m, ok := seen[md.FullName()]; ok {
		return m, nil
	}
	if md.ParentFile() == nil || md.ParentFile().Syntax() != protoreflect.Proto3 {
		return nil, errPlanUnsupported
	}
	m := &pbMsg{}
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		m.wkt = pbTimestamp
	case "google.protobuf.Duration":
		m.wkt = pbDuration
	default:
		if md.FullName().Parent() == "google.protobuf" {
			return nil, errPlanUnsupported
		}
	}
	seen[md.FullName()] = m
	m.noneofs = md.Oneofs().Len()
	fds := md.Fields()
	m.fields = make([]pbField, fds.Len())
	maxNum := 0
	for i := range fds.Len() {
		fd := fds.Get(i)
		if err := compilePBField(&m.fields[i], fd, seen); err != nil {
			return nil, err
		}
		if fd.IsMap() {
			e := fd.Message()
			m.fields[i].key, m.fields[i].val = new(pbField), new(pbField)
			if err := compilePBField(m.fields[i].key, e.Fields().ByNumber(1), seen); err != nil {
				return nil, err
			}
			if err := compilePBField(m.fields[i].val, e.Fields().ByNumber(2), seen); err != nil {
				return nil, err
			}
		}
		maxNum = max(maxNum, int(fd.Number()))
	}
	if maxNum < 256 {
		m.byNum = make([]int16, maxNum+1)
		for i := range m.fields {
			m.byNum[m.fields[i].num] = int16(i + 1)
		}
	} else {
		m.byMap = make(map[protowire.Number]int, len(m.fields))
		for i := range m.fields {
			m.byMap[m.fields[i].num] = i
		}
	}
	return m, nil
}

func compilePBField(f *pbField, fd protoreflect.FieldDescriptor, seen map[protoreflect.FullName]*pbMsg) error {
	name := jsonx.AppendString(nil, fd.TextName())
	f.name = append(name, ':')
	f.num = fd.Number()
	f.kind = fd.Kind()
	f.list = fd.IsList()
	f.oneof = -1
	if o := fd.ContainingOneof(); o != nil {
		f.oneof = o.Index()
	}
	f.presence = fd.HasPresence()
	switch f.kind {
	case protoreflect.GroupKind:
		return errPlanUnsupported
	case protoreflect.BoolKind, protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind,
		protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
		f.wire, f.packable = protowire.VarintType, true
	case protoreflect.Sfixed32Kind, protoreflect.Fixed32Kind, protoreflect.FloatKind:
		f.wire, f.packable = protowire.Fixed32Type, true
	case protoreflect.Sfixed64Kind, protoreflect.Fixed64Kind, protoreflect.DoubleKind:
		f.wire, f.packable = protowire.Fixed64Type, true
	default:
		f.wire = protowire.BytesType
	}
	switch f.kind {
	case protoreflect.EnumKind, protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind:
		f.is32 = true
	}
	if f.kind == protoreflect.EnumKind {
		ed := fd.Enum()
		if ed.FullName() == "google.protobuf.NullValue" {
			return errPlanUnsupported
		}
		f.enums = make(map[protoreflect.EnumNumber][]byte, ed.Values().Len())
		for i := range ed.Values().Len() {
			v := ed.Values().Get(i)
			if _, dup := f.enums[v.Number()]; !dup { // the first name of an alias, as protojson
				f.enums[v.Number()] = jsonx.AppendString(nil, string(v.Name()))
			}
		}
	}
	if f.kind == protoreflect.MessageKind && !fd.IsMap() {
		m, err := compilePBMsg(fd.Message(), seen)
		if err != nil {
			return err
		}
		f.msg = m
	}
	return nil
}

// pbOcc is one occurrence of a known field on the wire.
type pbOcc struct {
	field int32
	dead  bool // overwritten by another member of its oneof
	wt    protowire.Type
	u     uint64 // a varint or fixed value
	b     []byte // a length-delimited value
}

// pbWalker holds the scratch of one decode.
type pbWalker struct {
	occs  []pbOcc
	ents  []pbEntry
	cur   []int32 // per open message, its oneofs' current member
	quiet int     // >0 while validating values that are not written
}

const pbRecursionLimit = 10000 // proto.Unmarshal's default

var (
	errPBDecode    = errors.New("malformed protobuf wire data")
	errPBUTF8      = errors.New("string field contains invalid UTF-8")
	errPBRecursion = errors.New("exceeded maximum recursion depth")
	errPBMapKey    = errors.New("malformed message: a map entry's key has the wrong wire type")
)

func (w *pbWalker) message(dst, src []byte, m *pbMsg, depth int) ([]byte, error) {
	if depth > pbRecursionLimit {
		return dst, errPBRecursion
	}
	base, cbase := len(w.occs), len(w.cur)
	defer func() { w.occs, w.cur = w.occs[:base], w.cur[:cbase] }()
	for range m.noneofs {
		w.cur = append(w.cur, -1)
	}
	sorted := true
	last := int32(-1)
	for len(src) > 0 {
		num, wt, n := protowire.ConsumeTag(src)
		if n < 0 || num > protowire.MaxValidNumber {
			return dst, errPBDecode
		}
		src = src[n:]
		fi := m.lookup(num)
		known := fi >= 0
		var o pbOcc
		if known {
			f := &m.fields[fi]
			o = pbOcc{field: int32(fi), wt: wt}
			switch {
			case wt == f.wire:
				var err error
				if n, err = consumeValue(&o, src, wt, f.kind); err != nil {
					return dst, err
				}
			case wt == protowire.BytesType && f.list && f.packable:
				o.b, n = protowire.ConsumeBytes(src)
			default:
				known = false
			}
		}
		if !known {
			n = protowire.ConsumeFieldValue(num, wt, src)
			if n < 0 {
				return dst, errPBDecode
			}
			src = src[n:]
			continue
		}
		if n < 0 {
			return dst, errPBDecode
		}
		src = src[n:]
		f := &m.fields[fi]
		if f.oneof >= 0 {
			c := &w.cur[cbase+f.oneof]
			if *c != int32(fi) {
				if *c >= 0 {
					if err := w.kill(base, m, f.oneof, depth); err != nil {
						return dst, err
					}
				}
				*c = int32(fi)
			}
		}
		if o.field < last {
			sorted = false
		}
		last = o.field
		w.occs = append(w.occs, o)
	}
	if m.wkt != pbPlain {
		return w.wktValue(dst, m, base)
	}
	occs := w.occs[base:]
	if !sorted {
		// By field index (declaration order), keeping each field's
		// occurrences in wire order.
		slices.SortStableFunc(occs, func(a, b pbOcc) int { return int(a.field - b.field) })
	}
	dst = append(dst, '{')
	first := true
	for i := 0; i < len(occs); {
		j := i + 1
		for j < len(occs) && occs[j].field == occs[i].field {
			j++
		}
		f := &m.fields[occs[i].field]
		mark := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, f.name...)
		var (
			wrote bool
			err   error
		)
		dst, wrote, err = w.field(dst, f, base+i, base+j, depth)
		if err != nil {
			return dst, err
		}
		if wrote {
			first = false
		} else {
			dst = dst[:mark]
		}
		occs = w.occs[base:] // nested walks may have grown and moved w.occs
		i = j
	}
	return append(dst, '}'), nil
}

// kill marks the live occurrences of a oneof's members dead (a newer member
// replaces them), validating the messages among them as proto.Unmarshal
// would have.
func (w *pbWalker) kill(base int, m *pbMsg, oneof int, depth int) error {
	for i := base; i < len(w.occs); i++ {
		o := &w.occs[i]
		f := &m.fields[o.field]
		if f.oneof != oneof || o.dead {
			continue
		}
		o.dead = true
		if f.msg != nil {
			if err := w.validate(o.b, f.msg, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *pbWalker) validate(src []byte, m *pbMsg, depth int) error {
	w.quiet++
	defer func() { w.quiet-- }()
	mark := len(w.occs)
	_, err := w.message(nil, src, m, depth+1)
	w.occs = w.occs[:mark]
	return err
}

// field writes the value of one field from its occurrences occs[i:j],
// reporting false when there is nothing to write.
func (w *pbWalker) field(dst []byte, f *pbField, i, j int, depth int) ([]byte, bool, error) {
	// Skip dead occurrences (only oneof members have them, and a oneof's
	// live ones come after its dead ones).
	for i < j && w.occs[i].dead {
		i++
	}
	if i == j {
		return dst, false, nil
	}
	switch {
	case f.key != nil:
		return w.mapValue(dst, f, i, j, depth)
	case f.list:
		dst = append(dst, '[')
		n := 0
		for k := i; k < j; k++ {
			o := w.occs[k]
			if o.wt == protowire.BytesType && f.packable {
				var err error
				if dst, n, err = packed(dst, f, o.b, n); err != nil {
					return dst, false, err
				}
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			var err error
			if dst, err = w.value(dst, f, o, depth); err != nil {
				return dst, false, err
			}
		}
		return append(dst, ']'), n > 0, nil
	case f.msg != nil:
		src := w.occs[i].b
		if j-i > 1 {
			// Merged: the same as decoding the concatenation, once each
			// piece is known to parse on its own (a piece cut short must
			// not borrow the next one's bytes).
			var cat []byte
			for k := i; k < j; k++ {
				if err := w.validate(w.occs[k].b, f.msg, depth); err != nil {
					return dst, false, err
				}
				cat = append(cat, w.occs[k].b...)
			}
			src = cat
		}
		dst, err := w.message(dst, src, f.msg, depth+1)
		return dst, true, err
	}
	o := w.occs[j-1] // the last one wins
	if !f.presence && len(o.b) == 0 && (o.u == 0 || f.is32 && uint32(o.u) == 0) {
		return dst, false, nil
	}
	dst, err := w.value(dst, f, o, depth)
	return dst, true, err
}

func packed(dst []byte, f *pbField, b []byte, n int) ([]byte, int, error) {
	for len(b) > 0 {
		var o pbOcc
		var k int
		switch f.wire {
		case protowire.VarintType:
			o.u, k = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, k = protowire.ConsumeFixed32(b)
			o.u = uint64(v)
		default:
			o.u, k = protowire.ConsumeFixed64(b)
		}
		if k < 0 {
			return dst, n, errPBDecode
		}
		b = b[k:]
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = scalar(dst, f, o.u)
	}
	return dst, n, nil
}

// value writes one occurrence's value.
func (w *pbWalker) value(dst []byte, f *pbField, o pbOcc, depth int) ([]byte, error) {
	switch f.kind {
	case protoreflect.StringKind:
		return jsonx.AppendString(dst, o.b), nil
	case protoreflect.BytesKind:
		return appendBase64(dst, o.b), nil
	case protoreflect.MessageKind:
		return w.message(dst, o.b, f.msg, depth+1)
	}
	return scalar(dst, f, o.u), nil
}

// scalar writes a varint or fixed value of f's kind.
func scalar(dst []byte, f *pbField, u uint64) []byte {
	switch f.kind {
	case protoreflect.BoolKind:
		if u != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case protoreflect.EnumKind:
		if name, ok := f.enums[protoreflect.EnumNumber(u)]; ok {
			return append(dst, name...)
		}
		return strconv.AppendInt(dst, int64(int32(u)), 10)
	case protoreflect.Int32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(dst, int64(int32(u)), 10)
	case protoreflect.Sint32Kind:
		return strconv.AppendInt(dst, int64(int32(protowire.DecodeZigZag(u&math.MaxUint32))), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(dst, uint64(uint32(u)), 10)
	case protoreflect.Int64Kind, protoreflect.Sfixed64Kind:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, int64(u), 10), '"')
	case protoreflect.Sint64Kind:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, protowire.DecodeZigZag(u), 10), '"')
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		dst = append(dst, '"')
		return append(strconv.AppendUint(dst, u, 10), '"')
	case protoreflect.FloatKind:
		return appendProtoFloat(dst, float64(math.Float32frombits(uint32(u))), 32)
	case protoreflect.DoubleKind:
		return appendProtoFloat(dst, math.Float64frombits(u), 64)
	}
	panic("protobuf transcoder: unexpected kind " + f.kind.String())
}

// appendProtoFloat writes f as protojson does (encoding/json's number
// format; NaN and the infinities as strings).
func appendProtoFloat(out []byte, n float64, bitSize int) []byte {
	switch {
	case math.IsNaN(n):
		return append(out, `"NaN"`...)
	case math.IsInf(n, +1):
		return append(out, `"Infinity"`...)
	case math.IsInf(n, -1):
		return append(out, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(n); abs != 0 {
		if bitSize == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	out = strconv.AppendFloat(out, n, format, -1, bitSize)
	if format == 'e' {
		n := len(out)
		if n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
			out[n-2] = out[n-1]
			out = out[:n-1]
		}
	}
	return out
}

// pbEntry is one decoded map entry.
type pbEntry struct {
	key    pbOcc
	val    pbOcc
	hasVal bool
	cat    []byte // a message value given in more than one piece
}

func (w *pbWalker) mapValue(dst []byte, f *pbField, i, j int, depth int) ([]byte, bool, error) {
	eb := len(w.ents)
	defer func() { w.ents = w.ents[:eb] }()
	for k := i; k < j; k++ {
		e, err := w.entry(f, w.occs[k].b, depth)
		if err != nil {
			return dst, false, err
		}
		w.ents = append(w.ents, e)
	}
	// Nested maps append after these, never over them.
	entries := w.ents[eb:]
	slices.SortStableFunc(entries, func(a, b pbEntry) int { return compareKeys(f.key, a.key, b.key) })
	dst = append(dst, '{')
	n := 0
	for k := range entries {
		e := &entries[k]
		if k+1 < len(entries) && compareKeys(f.key, e.key, entries[k+1].key) == 0 {
			// A later entry replaces this one.
			if f.val.msg != nil {
				if err := w.validate(e.val.b, f.val.msg, depth); err != nil {
					return dst, false, err
				}
			}
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		switch f.key.kind {
		case protoreflect.StringKind:
			dst = jsonx.AppendString(dst, e.key.b)
		case protoreflect.BoolKind, protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
			protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
			dst = append(dst, '"')
			dst = scalar(dst, f.key, e.key.u)
			dst = append(dst, '"')
		default: // 64-bit kinds are quoted already
			dst = scalar(dst, f.key, e.key.u)
		}
		dst = append(dst, ':')
		var err error
		switch {
		case f.val.msg != nil:
			dst, err = w.message(dst, e.val.b, f.val.msg, depth+1)
		case !e.hasVal:
			dst, err = w.value(dst, f.val, pbOcc{}, depth)
		default:
			dst, err = w.value(dst, f.val, e.val, depth)
		}
		if err != nil {
			return dst, false, err
		}
	}
	return append(dst, '}'), true, nil
}

// entry decodes one map entry as proto.Unmarshal does: the last key wins,
// message values merge, fields of other numbers or wire types are skipped.
func (w *pbWalker) entry(f *pbField, b []byte, depth int) (pbEntry, error) {
	var e pbEntry
	// A key with another wire type after a good one breaks the entry:
	// proto.Unmarshal (with a dynamic message) panics on it, which the
	// protojson route reports as a malformed message; so does this one.
	haveKey, keyBroken := false, false
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return e, errPBDecode
		}
		b = b[n:]
		var ef *pbField
		switch num {
		case 1:
			ef = f.key
		case 2:
			ef = f.val
		}
		if ef == nil || wt != ef.wire {
			if num == 1 && haveKey {
				keyBroken = true
			}
			n = protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return e, errPBDecode
			}
			b = b[n:]
			continue
		}
		var o pbOcc
		var err error
		if n, err = consumeValue(&o, b, wt, ef.kind); err != nil {
			return e, err
		}
		if n < 0 {
			return e, errPBDecode
		}
		b = b[n:]
		if num == 1 {
			e.key, haveKey, keyBroken = o, true, false
			continue
		}
		if ef.msg != nil && e.hasVal {
			// Merged, as for a message field (see field).
			if e.cat == nil {
				if err := w.validate(e.val.b, ef.msg, depth); err != nil {
					return e, err
				}
			}
			if err := w.validate(o.b, ef.msg, depth); err != nil {
				return e, err
			}
			e.cat = append(append(e.cat[:0:0], e.val.b...), o.b...)
			o.b = e.cat
		}
		e.val, e.hasVal = o, true
	}
	if keyBroken {
		return e, errPBMapKey
	}
	return e, nil
}

func compareKeys(f *pbField, a, b pbOcc) int {
	switch f.kind {
	case protoreflect.StringKind:
		return bytes.Compare(a.b, b.b)
	case protoreflect.BoolKind:
		return cmpBool(a.u != 0, b.u != 0)
	case protoreflect.Int32Kind, protoreflect.Sfixed32Kind:
		return cmpInt(int64(int32(a.u)), int64(int32(b.u)))
	case protoreflect.Sint32Kind:
		return cmpInt(int64(int32(protowire.DecodeZigZag(a.u&math.MaxUint32))), int64(int32(protowire.DecodeZigZag(b.u&math.MaxUint32))))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return cmpInt(int64(uint32(a.u)), int64(uint32(b.u)))
	case protoreflect.Int64Kind, protoreflect.Sfixed64Kind:
		return cmpInt(int64(a.u), int64(b.u))
	case protoreflect.Sint64Kind:
		return cmpInt(protowire.DecodeZigZag(a.u), protowire.DecodeZigZag(b.u))
	}
	// uint64, fixed64
	switch {
	case a.u < b.u:
		return -1
	case a.u > b.u:
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// wktValue writes a Timestamp or a Duration from its occurrences.
func (w *pbWalker) wktValue(dst []byte, m *pbMsg, base int) ([]byte, error) {
	var secs int64
	var nanos int32
	for _, o := range w.occs[base:] {
		switch m.fields[o.field].num {
		case 1:
			secs = int64(o.u)
		case 2:
			nanos = int32(o.u)
		}
	}
	if w.quiet > 0 {
		return dst, nil
	}
	const secondsInNanos = 999999999
	var buf [48]byte
	x := buf[:0]
	if m.wkt == pbTimestamp {
		if secs < -62135596800 || secs > 253402300799 {
			return dst, errors.New("google.protobuf.Timestamp: seconds out of range " + strconv.FormatInt(secs, 10))
		}
		if nanos < 0 || nanos > secondsInNanos {
			return dst, errors.New("google.protobuf.Timestamp: nanos out of range " + strconv.FormatInt(int64(nanos), 10))
		}
		// time's AppendFormat("2006-01-02T15:04:05.000000000"), at a
		// fifth of its cost: the year is 1 to 9999 here.
		t := time.Unix(secs, int64(nanos)).UTC()
		y, mo, d := t.Date()
		h, mi, sec := t.Clock()
		x = appendDigits(x, y, 4)
		x = appendDigits(append(x, '-'), int(mo), 2)
		x = appendDigits(append(x, '-'), d, 2)
		x = appendDigits(append(x, 'T'), h, 2)
		x = appendDigits(append(x, ':'), mi, 2)
		x = appendDigits(append(x, ':'), sec, 2)
		x = appendDigits(append(x, '.'), int(nanos), 9)
		x = append(trimNanos(x), 'Z')
	} else {
		if secs < -315576000000 || secs > 315576000000 {
			return dst, errors.New("google.protobuf.Duration: seconds out of range " + strconv.FormatInt(secs, 10))
		}
		if nanos < -secondsInNanos || nanos > secondsInNanos {
			return dst, errors.New("google.protobuf.Duration: nanos out of range " + strconv.FormatInt(int64(nanos), 10))
		}
		if (secs > 0 && nanos < 0) || (secs < 0 && nanos > 0) {
			return dst, errors.New("google.protobuf.Duration: signs of seconds and nanos do not match")
		}
		n := int64(nanos)
		if secs < 0 || n < 0 {
			x, secs, n = append(x, '-'), -secs, -n
		}
		x = append(strconv.AppendInt(x, secs, 10), '.')
		x = appendDigits(x, int(n), 9)
		x = append(trimNanos(x), 's')
	}
	dst = append(dst, '"')
	dst = append(dst, x...)
	return append(dst, '"'), nil
}

// appendDigits appends v (>= 0) as exactly width decimal digits.
func appendDigits(dst []byte, v, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i], v = byte('0'+v%10), v/10
	}
	return append(dst, d[:width]...)
}

// trimNanos drops the fraction's trailing zeros three digits at a time,
// as protojson does: 0, 3, 6 or 9 digits.
func trimNanos(x []byte) []byte {
	for range 2 {
		x = bytes.TrimSuffix(x, []byte("000"))
	}
	return bytes.TrimSuffix(x, []byte(".000"))
}

// consumeValue reads from b one value of wire type wt into o (u for the
// numeric types, b for bytes), a string checked as UTF-8, and returns its
// length, negative if it does not parse.
func consumeValue(o *pbOcc, b []byte, wt protowire.Type, kind protoreflect.Kind) (int, error) {
	var n int
	switch wt {
	case protowire.VarintType:
		o.u, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		o.u = uint64(v)
	case protowire.Fixed64Type:
		o.u, n = protowire.ConsumeFixed64(b)
	default:
		o.b, n = protowire.ConsumeBytes(b)
		if n >= 0 && kind == protoreflect.StringKind && !utf8.Valid(o.b) {
			return n, errPBUTF8
		}
	}
	return n, nil
}
