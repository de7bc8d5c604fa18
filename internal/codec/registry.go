package codec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	gluetypes "github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/framing"
)

// fetchTimeout bounds one registry request, whoever waits for it.
const fetchTimeout = 10 * time.Second

// negativeTTL is how long an answer "no such schema" is remembered, so that
// a stream of records naming an unknown schema does not become a stream of
// registry requests.
const negativeTTL = 30 * time.Second

// maxFailed bounds the remembered "no such schema" answers.
const maxFailed = 4096

// schemaKey names a schema in a registry: a Confluent id or a Glue version.
type schemaKey struct {
	id      uint32
	version [16]byte
}

func keyOf(fr *framing.Frame) schemaKey { return schemaKey{id: fr.ID, version: fr.Version} }

// flight caches values by key and computes each at most once at a time:
// concurrent callers for the same key wait for one computation
// (singleflight). Values and permanent errors are cached (the latter for
// negativeTTL); an error wrapping ErrUnavailable is not, so that the next
// call tries again.
type flight[K comparable, V any] struct {
	// done holds the values: the hot path, under a read lock only.
	doneMu sync.RWMutex
	done   map[K]V

	mu      sync.Mutex
	pending map[K]*flightCall[V]
	failed  map[K]flightFail
	now     func() time.Time
}

type flightCall[V any] struct {
	ready chan struct{}
	v     V
	err   error
}

type flightFail struct {
	err error
	at  time.Time
}

// cached returns the value of k if it is known.
func (f *flight[K, V]) cached(k K) (V, bool) {
	f.doneMu.RLock()
	v, ok := f.done[k]
	f.doneMu.RUnlock()
	return v, ok
}

func (f *flight[K, V]) store(k K, v V) {
	f.doneMu.Lock()
	if f.done == nil {
		f.done = make(map[K]V)
	}
	f.done[k] = v
	f.doneMu.Unlock()
}

// get returns the value of k, computing it with fetch unless it is cached
// or being computed.
func (f *flight[K, V]) get(ctx context.Context, k K, fetch func(context.Context) (V, error)) (V, error) {
	if v, ok := f.cached(k); ok {
		return v, nil
	}
	f.mu.Lock()
	if v, ok := f.cached(k); ok {
		f.mu.Unlock()
		return v, nil
	}
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	if fl, ok := f.failed[k]; ok {
		if now().Sub(fl.at) < negativeTTL {
			f.mu.Unlock()
			var zero V
			return zero, fl.err
		}
		delete(f.failed, k)
	}
	c, ok := f.pending[k]
	if !ok {
		if f.pending == nil {
			f.pending = make(map[K]*flightCall[V])
			f.failed = make(map[K]flightFail)
		}
		c = &flightCall[V]{ready: make(chan struct{})}
		f.pending[k] = c
		// The fetch runs apart from any one caller's context, so that a
		// caller giving up does not fail the others; fetchTimeout ends it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		go func() {
			defer cancel()
			c.v, c.err = fetch(fctx)
			f.mu.Lock()
			delete(f.pending, k)
			switch {
			case c.err == nil:
				f.store(k, c.v)
			case !errors.Is(c.err, ErrUnavailable):
				if len(f.failed) >= maxFailed {
					// Records naming ever new unknown ids: forget
					// rather than grow.
					clear(f.failed)
				}
				f.failed[k] = flightFail{err: c.err, at: now()}
			}
			f.mu.Unlock()
			close(c.ready)
		}()
	}
	f.mu.Unlock()
	select {
	case <-c.ready:
		return c.v, c.err
	case <-ctx.Done():
		// Not the record's fault: transient, so never dead-lettered.
		var zero V
		return zero, fmt.Errorf("waiting for a schema: %w: %w", ErrUnavailable, ctx.Err())
	}
}

// registrySchema is a schema as a registry gives it.
type registrySchema struct {
	text   string
	format config.Format
	// imports are the schemas a Protobuf schema imports, by import path.
	imports map[string]string
}

// schemaSource fetches schemas named by a frame. Its errors are a
// *MissingSchemaError, a *RegistryError or a *SchemaError.
type schemaSource interface {
	lookup(ctx context.Context, fr *framing.Frame) (*registrySchema, error)
	// name is the registry as an operator knows it: a URL without
	// credentials, or "glue".
	name() string
}

// confluentSource is a Confluent-compatible registry, shared by the key and
// value decoders. It caches schemas by id and references by subject and
// version.
type confluentSource struct {
	cl  *sr.Client
	url string // redacted: it names the registry in errors
	// query is the URL's query, which the client repeats in its errors and
	// which may hold a token; errors carry query redacted.
	query, redactedQuery string
	ids                  flight[int, *registrySchema]
	refs                 flight[refKey, sr.SubjectSchema]
}

type refKey struct {
	subject string
	version int
}

// newConfluentSource builds the client from the registry configuration.
// Credentials in the URL are moved to basic auth, so that no error names
// them.
func newConfluentSource(c config.SchemaRegistry, hc *http.Client) (*confluentSource, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("SCHEMA_REGISTRY_URL %q: not an absolute URL", config.RedactURL(c.URL))
	}
	user, pass := c.Username, c.Password
	if u.User != nil {
		if user == "" {
			user = u.User.Username()
			pass, _ = u.User.Password()
		}
		u.User = nil
	}
	opts := []sr.ClientOpt{sr.URLs(u.String()), sr.UserAgent("msk-consumer")}
	if hc != nil {
		opts = append(opts, sr.HTTPClient(hc))
	}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	s := &confluentSource{cl: cl, url: config.RedactURL(u.String()), query: u.RawQuery}
	if s.query != "" {
		r, _ := url.Parse(s.url)
		s.redactedQuery = r.RawQuery
	}
	return s, nil
}

func (s *confluentSource) name() string { return s.url }

func (s *confluentSource) lookup(ctx context.Context, fr *framing.Frame) (*registrySchema, error) {
	id := int(fr.ID)
	if rs, ok := s.ids.cached(id); ok {
		return rs, nil
	}
	return s.ids.get(ctx, id, func(ctx context.Context) (*registrySchema, error) {
		sch, err := s.cl.SchemaByID(ctx, id)
		if err != nil {
			return nil, s.classify(err, strconv.Itoa(id))
		}
		rs := &registrySchema{text: sch.Schema}
		switch sch.Type {
		case sr.TypeAvro:
			rs.format = config.FormatAvro
		case sr.TypeProtobuf:
			rs.format = config.FormatProtobuf
		case sr.TypeJSON:
			rs.format = config.FormatJSON
		}
		if len(sch.References) > 0 {
			rs.imports = make(map[string]string)
			if err := s.addRefs(ctx, sch.References, rs.imports, 0); err != nil {
				return nil, err
			}
		}
		return rs, nil
	})
}

// addRefs fetches references, and theirs, into imports.
func (s *confluentSource) addRefs(ctx context.Context, refs []sr.SchemaReference, imports map[string]string, depth int) error {
	if depth > 32 {
		return &SchemaError{Framing: config.RegistryConfluent, Registry: s.url, Err: errors.New("references nested more than 32 deep")}
	}
	for _, r := range refs {
		if _, ok := imports[r.Name]; ok {
			continue
		}
		k := refKey{r.Subject, r.Version}
		ss, err := s.refs.get(ctx, k, func(ctx context.Context) (sr.SubjectSchema, error) {
			ss, err := s.cl.SchemaByVersion(ctx, r.Subject, r.Version)
			if err != nil {
				return ss, s.classify(err, "subject "+r.Subject+" version "+strconv.Itoa(r.Version))
			}
			return ss, nil
		})
		if err != nil {
			return err
		}
		imports[r.Name] = ss.Schema.Schema
		if len(ss.References) > 0 {
			if err := s.addRefs(ctx, ss.References, imports, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// classify turns a client error into a *MissingSchemaError (404) or a
// *RegistryError (anything else: the record is not at fault).
func (s *confluentSource) classify(err error, ref string) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode == http.StatusNotFound {
			return &MissingSchemaError{Framing: config.RegistryConfluent, SchemaID: ref, Registry: s.url,
				Err: errors.New(strconv.Itoa(re.StatusCode) + " " + re.Error())}
		}
		return &RegistryError{Framing: config.RegistryConfluent, SchemaID: ref, Registry: s.url, StatusCode: re.StatusCode,
			Err: errors.New("status " + strconv.Itoa(re.StatusCode) + ": " + re.Error())}
	}
	if s.query != "" && strings.Contains(err.Error(), s.query) {
		err = redactedError{err, strings.ReplaceAll(err.Error(), s.query, s.redactedQuery)}
	}
	return &RegistryError{Framing: config.RegistryConfluent, SchemaID: ref, Registry: s.url, Err: err}
}

// redactedError is an error with a message edited to hide a secret; errors.Is
// and errors.As still see the original.
type redactedError struct {
	err error
	msg string
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// GlueAPI is the one call of the Glue client used here; *glue.Client has it.
type GlueAPI interface {
	GetSchemaVersion(ctx context.Context, in *glue.GetSchemaVersionInput, opts ...func(*glue.Options)) (*glue.GetSchemaVersionOutput, error)
}

// glueSource is the AWS Glue Schema Registry, cached by version id.
type glueSource struct {
	api      GlueAPI
	versions flight[[16]byte, *registrySchema]
}

func (s *glueSource) name() string { return "glue" }

func (s *glueSource) lookup(ctx context.Context, fr *framing.Frame) (*registrySchema, error) {
	version := fr.Version
	return s.versions.get(ctx, version, func(ctx context.Context) (*registrySchema, error) {
		ref := (&framing.Frame{Framing: config.RegistryGlue, Version: version}).SchemaRef()
		out, err := s.api.GetSchemaVersion(ctx, &glue.GetSchemaVersionInput{SchemaVersionId: aws.String(ref)})
		if err != nil {
			var nf *gluetypes.EntityNotFoundException
			if errors.As(err, &nf) {
				return nil, &MissingSchemaError{Framing: config.RegistryGlue, SchemaID: ref, Registry: "glue", Err: err}
			}
			return nil, &RegistryError{Framing: config.RegistryGlue, SchemaID: ref, Registry: "glue", Err: err}
		}
		rs := &registrySchema{text: aws.ToString(out.SchemaDefinition)}
		switch out.DataFormat {
		case gluetypes.DataFormatAvro:
			rs.format = config.FormatAvro
		case gluetypes.DataFormatProtobuf:
			rs.format = config.FormatProtobuf
		case gluetypes.DataFormatJson:
			rs.format = config.FormatJSON
		}
		return rs, nil
	})
}
