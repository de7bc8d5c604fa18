package codec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// Protobuf: a message is written in protojson's canonical proto3 mapping,
// with the .proto field names (UseProtoNames): by the transcoder
// (prototranscode.go), straight from the wire bytes, for proto3 messages
// whose tree holds no well-known type but Timestamp and Duration; else
// decoded with dynamicpb against its descriptor and written by protojson. Fields at their default value are omitted, as the
// canonical mapping says; 64-bit integers are JSON strings; bytes are
// standard base64; enums are their value names.
//
// Unknown fields (written by a newer schema) are accepted and left out of
// the JSON, as protobuf's compatibility rules intend. Bytes that are not a
// valid encoding (truncated, a bad wire type, invalid UTF-8 in a proto3
// string, a missing proto2 required field) are a decode failure.

var protoJSON = protojson.MarshalOptions{UseProtoNames: true}

// LoadMessage reads a binary FileDescriptorSet (protoc --descriptor_set_out,
// buf build -o) and returns the descriptor of the named message. It is
// exported for Go handlers that decode into dynamic messages.
func LoadMessage(path, message string) (protoreflect.MessageDescriptor, error) {
	if path == "" {
		return nil, errors.New("protobuf needs a descriptor set file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading protobuf descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a binary FileDescriptorSet: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("protobuf descriptor set %s: %w", path, err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(message))
	if err != nil {
		return nil, fmt.Errorf("protobuf message %q not in %s: %w", message, path, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%q in %s is not a message", message, path)
	}
	return md, nil
}

// protoMessage decodes one message type.
type protoMessage struct {
	md protoreflect.MessageDescriptor
	mt protoreflect.MessageType
	// plan is the transcoder's (prototranscode.go), nil for the messages it
	// does not cover: those take the dynamicpb+protojson route.
	plan *pbMsg
}

func newProtoMessage(md protoreflect.MessageDescriptor) *protoMessage {
	p := &protoMessage{md: md, mt: dynamicpb.NewMessageType(md)}
	if plan, err := compilePB(md); err == nil {
		p.plan = plan
	}
	return p
}

var pbWalkers = sync.Pool{New: func() any { return new(pbWalker) }}

// appendJSON decodes payload as the message and appends its JSON.
func (p *protoMessage) appendJSON(dst, payload []byte) ([]byte, error) {
	if p.plan == nil {
		return p.appendJSONDynamic(dst, payload)
	}
	w := pbWalkers.Get().(*pbWalker)
	out, err := w.message(dst, payload, p.plan, 0)
	w.occs, w.ents, w.cur = w.occs[:0], w.ents[:0], w.cur[:0]
	pbWalkers.Put(w)
	if err != nil {
		return dst, &DecodeError{Format: config.FormatProtobuf, Reason: string(p.md.FullName()), Err: err}
	}
	return out, nil
}

// appendJSONDynamic decodes payload into a dynamic message and writes it
// with protojson: the route for what the transcoder does not cover, and
// the oracle it is tested against.
func (p *protoMessage) appendJSONDynamic(dst, payload []byte) (out []byte, err error) {
	// dynamicpb panics on some malformed map entries (a map entry whose
	// key has the wrong wire type, found by FuzzProtobuf): bytes that do
	// not decode, never a crash.
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, &DecodeError{Format: config.FormatProtobuf, Reason: string(p.md.FullName()), Err: fmt.Errorf("malformed message: %v", r)}
		}
	}()
	m := p.mt.New().Interface()
	if err := proto.Unmarshal(payload, m); err != nil {
		return dst, &DecodeError{Format: config.FormatProtobuf, Reason: string(p.md.FullName()), Err: err}
	}
	out, err = protoJSON.MarshalAppend(dst, m)
	if err != nil {
		return dst, &DecodeError{Format: config.FormatProtobuf, Reason: string(p.md.FullName()), Err: err}
	}
	return out, nil
}

// protoDecoder decodes one configured message type, with any framing
// stripped (and the registry not consulted: the local descriptor rules).
type protoDecoder struct {
	msg             *protoMessage
	framing         config.Registry
	maxDecompressed int
}

func (d *protoDecoder) AppendJSON(_ context.Context, dst, src []byte) ([]byte, error) {
	fr, err := unframe(d.framing, config.FormatProtobuf, src, d.maxDecompressed)
	if err != nil {
		return dst, err
	}
	out, err := d.msg.appendJSON(dst, fr.Payload)
	if err != nil && d.framing != config.RegistryNone && d.framing != "" {
		return dst, withSchema(err, d.framing, fr.SchemaRef())
	}
	return out, err
}

// protoSchema is a Protobuf schema from a registry, compiled.
type protoSchema struct {
	file protoreflect.FileDescriptor
	// sorted are the file's messages, nested ones included, sorted by full
	// name: Glue's message index counts in that order.
	sorted []*protoMessage
	// byPath caches messages by Confluent index path, built lazily.
	top []*protoMessage
}

// compileProto compiles a .proto text with its imports.
func compileProto(ctx context.Context, rs *registrySchema) (*protoSchema, error) {
	const main = "__registry_schema__.proto"
	srcs := map[string]string{main: rs.text}
	for k, v := range rs.imports {
		srcs[k] = v
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: protocompile.SourceAccessorFromMap(srcs),
		}),
	}
	files, err := c.Compile(ctx, main)
	if err != nil {
		return nil, err
	}
	fd := files.FindFileByPath(main)
	if fd == nil {
		return nil, errors.New("compiled schema not found")
	}
	ps := &protoSchema{file: fd}
	var all []protoreflect.MessageDescriptor
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.IsMapEntry() {
				continue
			}
			all = append(all, m)
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	sort.Slice(all, func(i, j int) bool { return all[i].FullName() < all[j].FullName() })
	for _, m := range all {
		ps.sorted = append(ps.sorted, newProtoMessage(m))
	}
	for i := range fd.Messages().Len() {
		ps.top = append(ps.top, newProtoMessage(fd.Messages().Get(i)))
	}
	return ps, nil
}

// byIndexes finds the message a Confluent index path names: the first index
// into the file's messages, each next one into the nested messages of the
// one before.
func (ps *protoSchema) byIndexes(idx []int) (*protoMessage, error) {
	if len(idx) == 0 || idx[0] >= len(ps.top) {
		return nil, fmt.Errorf("message index %v not in the schema", idx)
	}
	m := ps.top[idx[0]]
	if len(idx) == 1 {
		return m, nil
	}
	md := m.md
	for _, i := range idx[1:] {
		if i >= md.Messages().Len() {
			return nil, fmt.Errorf("message index %v not in the schema", idx)
		}
		md = md.Messages().Get(i)
	}
	return newProtoMessage(md), nil
}

// protoRegistryDecoder decodes Protobuf whose schema comes from the
// registry (no local descriptor set).
type protoRegistryDecoder struct {
	src             schemaSource
	framing         config.Registry
	maxDecompressed int
	cache           flight[schemaKey, *protoSchema]
}

func (d *protoRegistryDecoder) AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error) {
	fr, err := unframe(d.framing, config.FormatProtobuf, src, d.maxDecompressed)
	if err != nil {
		return dst, err
	}
	ps, err := d.schema(ctx, &fr)
	if err != nil {
		return dst, err
	}
	var msg *protoMessage
	payload := fr.Payload
	if d.framing == config.RegistryGlue {
		i := fr.Indexes[0]
		if i >= len(ps.sorted) {
			return dst, &DecodeError{Format: config.FormatProtobuf, Framing: d.framing, SchemaID: fr.SchemaRef(),
				Reason: "message index " + strconv.Itoa(i) + " not in the schema"}
		}
		msg = ps.sorted[i]
	} else if msg, err = ps.byIndexes(fr.Indexes); err != nil {
		return dst, &DecodeError{Format: config.FormatProtobuf, Framing: d.framing, SchemaID: fr.SchemaRef(), Err: err}
	}
	out, err := msg.appendJSON(dst, payload)
	if err != nil {
		return dst, withSchema(err, d.framing, fr.SchemaRef())
	}
	return out, nil
}

func (d *protoRegistryDecoder) schema(ctx context.Context, frp *framing.Frame) (*protoSchema, error) {
	k := keyOf(frp)
	if ps, ok := d.cache.cached(k); ok {
		return ps, nil
	}
	fr := new(framing.Frame) // a copy for the fetch, so that only a miss allocates
	*fr = *frp
	return d.cache.get(ctx, k, func(ctx context.Context) (*protoSchema, error) {
		rs, err := d.src.lookup(ctx, fr)
		if err != nil {
			return nil, err
		}
		if rs.format != config.FormatProtobuf {
			return nil, &SchemaError{Format: config.FormatProtobuf, Framing: d.framing, SchemaID: fr.SchemaRef(), Registry: d.src.name(),
				Err: fmt.Errorf("the registry says the schema is %s, not protobuf", orUnknown(rs.format))}
		}
		ps, err := compileProto(ctx, rs)
		if err != nil {
			return nil, &SchemaError{Format: config.FormatProtobuf, Framing: d.framing, SchemaID: fr.SchemaRef(), Registry: d.src.name(), Err: err}
		}
		return ps, nil
	})
}

func orUnknown(f config.Format) string {
	if f == "" {
		return "of an unknown type"
	}
	return string(f)
}
