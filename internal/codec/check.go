package codec

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// Check builds the key and value decoders of cfg as NewKeyValue does, but
// offline: no registry client is made and no AWS configuration is loaded,
// so nothing is dialed and no credentials are needed. It finds what
// NewKeyValue would refuse that config.Validate cannot see, because it
// needs the schemas themselves: an Avro schema file that does not parse, a
// file that is not a FileDescriptorSet, a Protobuf message that is not in
// its set. It is for `consumer config`, which must report every problem
// `run` would exit 2 for without connecting to anything.
//
// Problems are returned as config.Errors, at most one per side, under the
// variable to fix; nil when both sides build. A side whose variables are
// invalid (an unknown format, say) is reported here too; callers that also
// ran config.Load may prefer Load's wording for that side.
func Check(cfg config.Config) error {
	var ps config.Errors
	for _, side := range []struct {
		prefix string
		c      config.Codec
	}{{"KEY_", cfg.Key}, {"VALUE_", cfg.Value}} {
		if _, err := buildDecoder(side.c, offlineSource{}, Options{}); err != nil {
			ps = append(ps, sideProblem(side.prefix, side.c, err))
		}
	}
	return ps.Err()
}

// sideProblem names the variable of one side (prefix "KEY_" or "VALUE_")
// that made its decoder fail to build with err.
func sideProblem(prefix string, c config.Codec, err error) config.Problem {
	fileVar, msgVar := prefix+"SCHEMA_FILE", prefix+"PROTO_MESSAGE"
	switch {
	case errors.Is(err, ErrUnsupported):
		return config.Problem{Var: prefix + "FORMAT", Value: string(c.Format),
			Expected: "expected a format and framing this version decodes: " + err.Error()}
	case c.Format == config.FormatAvro:
		return config.Problem{Var: fileVar, Value: c.SchemaFile,
			Expected: "expected an Avro schema (.avsc) that parses: " + err.Error()}
	case c.Format == config.FormatProtobuf && c.SchemaFile != "" && descriptorSetLoads(c.SchemaFile):
		// The set is sound, so the message name is what is wrong: not in
		// the set, or not a message.
		return config.Problem{Var: msgVar, Value: c.ProtoMessage,
			Expected: fmt.Sprintf("expected the full name of a message in %s: %v", fileVar, err)}
	case c.Format == config.FormatProtobuf:
		return config.Problem{Var: fileVar, Value: c.SchemaFile,
			Expected: "expected a binary FileDescriptorSet (protoc --descriptor_set_out, buf build -o): " + err.Error()}
	default:
		return config.Problem{Var: prefix + "FORMAT", Value: string(c.Format),
			Expected: "expected a format this version decodes: " + err.Error()}
	}
}

// descriptorSetLoads reports whether path is a readable, well-formed
// FileDescriptorSet: looking up the empty name in it then fails only with
// NotFound.
func descriptorSetLoads(path string) bool {
	_, err := LoadMessage(path, "")
	return errors.Is(err, protoregistry.NotFound)
}

// offlineSource stands in for a registry in Check. Building a decoder never
// asks its source for a schema, so lookup is never called; if it were, it
// says why rather than dialing.
type offlineSource struct{}

func (offlineSource) lookup(context.Context, *framing.Frame) (*registrySchema, error) {
	return nil, fmt.Errorf("schema registry not consulted by Check: %w", ErrUnsupported)
}

func (offlineSource) name() string { return "offline" }
