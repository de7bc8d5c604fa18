// Package codec turns the bytes of a record's key or value into JSON:
// formats (JSON, Avro, Protobuf, strings, bytes, numbers) and framings
// (none, Confluent, Glue), with schemas from files or registries (a
// Confluent-compatible registry through franz-go's pkg/sr, the AWS Glue
// Schema Registry through the AWS SDK), fetched once per schema and cached.
//
// It knows nothing of Kafka clients or handlers. A nil key or value (no key,
// a tombstone) never reaches a Decoder: the caller renders it as null.
package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/avro"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// Decoder decodes one side (key or value) of records.
//
// AppendJSON decodes src and appends its JSON form to dst, returning the
// extended buffer. It must consume src completely and exactly: too short, an
// impossible length, or bytes left over are an error wrapping ErrDecode.
// Errors that say nothing about src (a schema registry that cannot be
// reached) wrap ErrUnavailable, so that the caller retries rather than
// dead-letters. On error, dst is returned cut back to its original length,
// so the caller may keep using it. Implementations are safe for concurrent
// use.
type Decoder interface {
	AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error)
}

// Options tune the decoders and the registry clients they share. The zero
// value is the production setting.
type Options struct {
	// HTTPClient is used for the Confluent registry; nil uses pkg/sr's
	// default (a 5s timeout per request).
	HTTPClient *http.Client
	// Glue is the Glue client; nil builds one from the AWS SDK's default
	// configuration (credential chain, region, endpoint settings such as
	// AWS_ENDPOINT_URL_GLUE).
	Glue GlueAPI
	// AWSRegion is the region for the Glue client built here, when set
	// (the service passes AWS_REGION / AWS_DEFAULT_REGION).
	AWSRegion string
	// MaxDecompressed bounds a Glue zlib payload after decompression;
	// 0 means framing.DefaultMaxDecompressed.
	MaxDecompressed int
}

// sources are the registry clients shared by the key and value decoders.
type sources struct {
	confluent *confluentSource
	glue      *glueSource
}

// NewKeyValue returns the key and value decoders as cfg configures them,
// sharing one client per registry (and so one schema cache). Nothing is
// fetched here: schemas are fetched from the registries on first use.
// Errors are configuration errors (a schema file that does not parse, a
// message not in the descriptor set, no registry URL) and name what to fix.
func NewKeyValue(ctx context.Context, cfg config.Config, o Options) (key, value Decoder, err error) {
	var s sources
	uses := func(r config.Registry) bool { return cfg.Key.Registry == r || cfg.Value.Registry == r }
	if uses(config.RegistryConfluent) {
		if cfg.Registry.URL == "" {
			return nil, nil, errors.New("SCHEMA_REGISTRY_URL is required with confluent framing")
		}
		if s.confluent, err = newConfluentSource(cfg.Registry, o.HTTPClient); err != nil {
			return nil, nil, err
		}
	}
	if uses(config.RegistryGlue) {
		api := o.Glue
		if api == nil {
			var lo []func(*awsconfig.LoadOptions) error
			if o.AWSRegion != "" {
				lo = append(lo, awsconfig.WithRegion(o.AWSRegion))
			}
			ac, err := awsconfig.LoadDefaultConfig(ctx, lo...)
			if err != nil {
				return nil, nil, fmt.Errorf("AWS configuration for the Glue schema registry: %w", err)
			}
			api = newGlueClient(ac)
		}
		s.glue = &glueSource{api: api}
	}
	if key, err = newDecoder(cfg.Key, &s, o); err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	if value, err = newDecoder(cfg.Value, &s, o); err != nil {
		return nil, nil, fmt.Errorf("value: %w", err)
	}
	return key, value, nil
}

func newGlueClient(ac aws.Config) *glue.Client { return glue.NewFromConfig(ac) }

// New returns the Decoder for one side of a record as configured, for
// framings that need no registry client of their own: none, and glue with
// the AWS SDK's default configuration. Confluent framing needs the registry
// configuration: use NewKeyValue.
func New(c config.Codec) (Decoder, error) {
	var s sources
	if c.Registry == config.RegistryGlue {
		ac, err := awsconfig.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("AWS configuration for the Glue schema registry: %w", err)
		}
		s.glue = &glueSource{api: newGlueClient(ac)}
	}
	return newDecoder(c, &s, Options{})
}

func newDecoder(c config.Codec, s *sources, o Options) (Decoder, error) {
	var src schemaSource
	switch c.Registry {
	case "", config.RegistryNone:
	case config.RegistryConfluent:
		if s.confluent == nil {
			return nil, fmt.Errorf("confluent framing needs the schema registry configuration (use NewKeyValue): %w", ErrUnsupported)
		}
		src = s.confluent
	case config.RegistryGlue:
		if s.glue == nil {
			return nil, fmt.Errorf("glue framing without a Glue client: %w", ErrUnsupported)
		}
		src = s.glue
	default:
		return nil, fmt.Errorf("schema registry %q: %w", c.Registry, ErrUnsupported)
	}
	return buildDecoder(c, src, o)
}

// buildDecoder builds the decoder of c, whose schemas come from src when
// it is framed.
func buildDecoder(c config.Codec, src schemaSource, o Options) (Decoder, error) {
	framed := c.Registry != "" && c.Registry != config.RegistryNone
	if framed {
		switch c.Format {
		case config.FormatAvro, config.FormatProtobuf, config.FormatJSON:
		default:
			return nil, fmt.Errorf("%s framing applies only to avro, protobuf and json, not %s: %w", c.Registry, c.Format, ErrUnsupported)
		}
	}
	switch c.Format {
	case config.FormatJSON:
		if framed {
			return &framedJSON{framing: c.Registry, maxDecompressed: o.MaxDecompressed, src: src}, nil
		}
		return jsonDecoder{}, nil
	case config.FormatString:
		return stringDecoder{}, nil
	case config.FormatBytes:
		return bytesDecoder{}, nil
	case config.FormatInt:
		return intDecoder{}, nil
	case config.FormatLong:
		return longDecoder{}, nil
	case config.FormatAvro:
		if !framed {
			return newAvroFile(c.SchemaFile)
		}
		d := &avroRegistryDecoder{src: src, framing: c.Registry, maxDecompressed: o.MaxDecompressed}
		if c.SchemaFile != "" {
			rd, err := newAvroFile(c.SchemaFile)
			if err != nil {
				return nil, err
			}
			d.reader, d.readerDec = rd.schema, rd
		}
		return d, nil
	case config.FormatProtobuf:
		if c.SchemaFile == "" {
			if !framed {
				return nil, errors.New("protobuf needs a descriptor set file (VALUE_SCHEMA_FILE / KEY_SCHEMA_FILE) or a schema registry")
			}
			return &protoRegistryDecoder{src: src, framing: c.Registry, maxDecompressed: o.MaxDecompressed}, nil
		}
		md, err := LoadMessage(c.SchemaFile, c.ProtoMessage)
		if err != nil {
			return nil, err
		}
		return &protoDecoder{msg: newProtoMessage(md), framing: c.Registry, maxDecompressed: o.MaxDecompressed}, nil
	default:
		return nil, fmt.Errorf("format %q: %w", c.Format, ErrUnsupported)
	}
}

// framedJSON strips a registry framing, validates the JSON against the JSON
// Schema the framing names (fetched once per schema id and compiled), and
// passes the JSON through unchanged.
type framedJSON struct {
	framing         config.Registry
	maxDecompressed int
	src             schemaSource
	cache           flight[schemaKey, *jsonschema.Schema]
}

func (d *framedJSON) AppendJSON(ctx context.Context, dst, src []byte) ([]byte, error) {
	fr, err := unframe(d.framing, config.FormatJSON, src, d.maxDecompressed)
	if err != nil {
		return dst, err
	}
	out, err := jsonDecoder{}.AppendJSON(ctx, dst, fr.Payload)
	if err != nil {
		return dst, withSchema(err, d.framing, fr.SchemaRef())
	}
	if d.src == nil {
		return out, nil
	}
	sch, err := d.schema(ctx, &fr)
	if err != nil {
		return dst, err
	}
	// Validation needs the value as Go values: the slow path, taken only
	// for JSON Schema records from a registry.
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(fr.Payload))
	if err == nil {
		err = sch.Validate(inst)
	}
	if err != nil {
		return dst, &DecodeError{Format: config.FormatJSON, Framing: d.framing, SchemaID: fr.SchemaRef(),
			Reason: "does not match its JSON Schema", Err: err}
	}
	return out, nil
}

// schema returns the compiled JSON Schema the frame names.
func (d *framedJSON) schema(ctx context.Context, frp *framing.Frame) (*jsonschema.Schema, error) {
	k := keyOf(frp)
	if sch, ok := d.cache.cached(k); ok {
		return sch, nil
	}
	fr := new(framing.Frame)
	*fr = *frp
	return d.cache.get(ctx, k, func(ctx context.Context) (*jsonschema.Schema, error) {
		rs, err := d.src.lookup(ctx, fr)
		if err != nil {
			return nil, err
		}
		schemaErr := func(err error) error {
			return &SchemaError{Format: config.FormatJSON, Framing: d.framing, SchemaID: fr.SchemaRef(), Registry: d.src.name(), Err: err}
		}
		if rs.format != config.FormatJSON {
			return nil, schemaErr(fmt.Errorf("the registry says the schema is %s, not a JSON Schema", orUnknown(rs.format)))
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(rs.text))
		if err != nil {
			return nil, schemaErr(err)
		}
		c := jsonschema.NewCompiler()
		// A schema's own $id may name a remote location: compile what the
		// registry gave, never fetch.
		c.UseLoader(noLoader{})
		const url = "mem://registry/schema.json"
		if err := c.AddResource(url, doc); err != nil {
			return nil, schemaErr(err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			return nil, schemaErr(err)
		}
		return sch, nil
	})
}

// noLoader refuses to fetch schemas: references must be in the schema.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("JSON Schema references to other documents (%s) are not supported", url)
}

// ParseAvroFile reads and parses an .avsc file, for Go handlers that
// decode Avro into their own types.
func ParseAvroFile(path string) (*avro.Schema, error) {
	d, err := newAvroFile(path)
	if err != nil {
		return nil, err
	}
	return d.schema, nil
}
