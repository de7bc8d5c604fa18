package codec

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/config"
)

func goldenVec(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name+".bin"))
	must(tb, err)
	return b
}

func goldenWant(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name+".json"))
	must(tb, err)
	return b
}

// confluentValue builds a value decoder against the fake registry.
func confluentValue(t *testing.T, url string, c config.Codec, o Options) Decoder {
	t.Helper()
	c.Registry = config.RegistryConfluent
	_, d, err := NewKeyValue(context.Background(), config.Config{
		Registry: config.SchemaRegistry{URL: url},
		Key:      config.Codec{Format: config.FormatString},
		Value:    c,
	}, o)
	must(t, err)
	return d
}

func confluentBytes(id uint32, payload []byte) []byte {
	return append([]byte{0, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, payload...)
}

func TestConfluentMixedVersions(t *testing.T) {
	cf := newFakeConfluent(t, loadGoldenRegistry(t))
	d := confluentValue(t, cf.URL(), config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}, Options{})
	for range 3 {
		for _, name := range []string{"value_avro_confluent", "value_avro_confluent_evolved"} {
			got, err := d.AppendJSON(context.Background(), nil, goldenVec(t, name))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if want := goldenWant(t, name); !sameJSON(t, got, want) {
				t.Fatalf("%s: got %s, want %s", name, got, want)
			}
		}
	}
	if got := cf.idCalls.Load(); got != 2 {
		t.Errorf("got %d schema requests, want 2 (one per id)", got)
	}
}

func TestConfluentFailures(t *testing.T) {
	cf := newFakeConfluent(t, loadGoldenRegistry(t))
	// Credentials in the URL must never show in an error.
	url := strings.Replace(cf.URL(), "http://", "http://user:hunter2@", 1)
	avroDec := confluentValue(t, url, config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}, Options{})
	jsonDec := confluentValue(t, url, config.Codec{Format: config.FormatJSON}, Options{})
	protoDec := confluentValue(t, url, config.Codec{Format: config.FormatProtobuf}, Options{})
	small := goldenBin(t, "small")
	tests := []struct {
		name     string
		dec      Decoder
		src      []byte
		wantIs   error
		wantAs   any
		contains []string
	}{
		{name: "unknown id", dec: avroDec, src: confluentBytes(999, small), wantIs: ErrDecode, wantAs: new(*MissingSchemaError),
			contains: []string{"schema id 999", "not found", cf.URL()}},
		{name: "wrong magic byte", dec: avroDec, src: append([]byte{1}, confluentBytes(1, small)[1:]...), wantIs: ErrDecode,
			contains: []string{"malformed confluent framing", "magic byte 1"}},
		{name: "short header", dec: avroDec, src: []byte{0, 0, 1}, wantIs: ErrDecode, contains: []string{"shorter than the 5-byte header"}},
		{name: "bytes do not match the schema", dec: avroDec, src: confluentBytes(1, small[:len(small)-2]), wantIs: ErrDecode,
			wantAs: new(*DecodeError), contains: []string{"avro (confluent schema id 1)"}},
		{name: "bytes left over", dec: avroDec, src: confluentBytes(1, append(small, 0)), wantIs: ErrDecode,
			contains: []string{"schema id 1", "left over"}},
		{name: "schema of another type", dec: avroDec, src: confluentBytes(idJSON, small), wantIs: ErrDecode, wantAs: new(*SchemaError),
			contains: []string{"schema id 5", "not avro"}},
		{name: "json not json", dec: jsonDec, src: confluentBytes(idJSON, []byte("{")), wantIs: ErrDecode, contains: []string{"json (confluent schema id 5)"}},
		{name: "json not matching its JSON Schema", dec: jsonDec, src: confluentBytes(idJSON, []byte(`{"id":"forty-two","sku":"SKU-1"}`)),
			wantIs: ErrDecode, wantAs: new(*DecodeError), contains: []string{"json (confluent schema id 5)", "does not match its JSON Schema", "/id"}},
		{name: "json missing a required property", dec: jsonDec, src: confluentBytes(idJSON, []byte(`{"sku":"SKU-1"}`)),
			wantIs: ErrDecode, contains: []string{"schema id 5", "missing property", "id"}},
		{name: "json schema of another type", dec: jsonDec, src: confluentBytes(idAvroValue, []byte(`{}`)), wantIs: ErrDecode,
			wantAs: new(*SchemaError), contains: []string{"schema id 1", "not a JSON Schema"}},
		{name: "protobuf index out of range", dec: protoDec, src: append(confluentBytes(idProto, nil), 2, 14), wantIs: ErrDecode,
			contains: []string{"schema id 4", "message index"}},
		{name: "protobuf huge index count", dec: protoDec, src: append(confluentBytes(idProto, nil), 0xfe, 0xff, 0xff, 0xff, 0x0f), wantIs: ErrDecode,
			contains: []string{"message-index count"}},
		{name: "protobuf garbage", dec: protoDec, src: append(confluentBytes(idProto, nil), 0, 0xff, 0xff), wantIs: ErrDecode,
			contains: []string{"schema id 4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.dec.AppendJSON(context.Background(), []byte("dst"), tt.src)
			if err == nil {
				t.Fatalf("got %s, want an error", out)
			}
			if string(out) != "dst" {
				t.Errorf("got dst %q after an error, want it cut back", out)
			}
			if !errors.Is(err, tt.wantIs) || errors.Is(err, ErrUnavailable) {
				t.Errorf("got %v, want one wrapping %v only", err, tt.wantIs)
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("got %T %v, want %T", err, err, tt.wantAs)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("got %q, want it to contain %q", err, c)
				}
			}
			if strings.Contains(err.Error(), "hunter2") || strings.ContainsAny(err.Error(), "\n") {
				t.Errorf("got %q: a credential or a line break in the message", err)
			}
		})
	}
}

// TestConfluentOutage: an outage mid-stream gives ErrUnavailable (the
// partition waits, nothing dead-lettered), ids already cached still decode,
// and after recovery the record decodes.
func TestConfluentOutage(t *testing.T) {
	cf := newFakeConfluent(t, loadGoldenRegistry(t))
	d := confluentValue(t, cf.URL(), config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}, Options{})
	ctx := context.Background()
	v2, v1 := goldenVec(t, "value_avro_confluent"), goldenVec(t, "value_avro_confluent_evolved")
	if _, err := d.AppendJSON(ctx, nil, v2); err != nil {
		t.Fatal(err)
	}
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusUnauthorized} {
		cf.down.Store(int32(code))
		_, err := d.AppendJSON(ctx, nil, v1)
		var re *RegistryError
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDecode) || !errors.As(err, &re) || re.StatusCode != code {
			t.Fatalf("status %d: got %v, want a *RegistryError wrapping ErrUnavailable only", code, err)
		}
		if !strings.Contains(err.Error(), "schema id 2") || !strings.Contains(err.Error(), cf.URL()) {
			t.Errorf("got %q, want the schema id and the registry", err)
		}
		if _, err := d.AppendJSON(ctx, nil, v2); err != nil {
			t.Fatalf("a cached schema: got %v during the outage, want success", err)
		}
	}
	cf.down.Store(0)
	if got, err := d.AppendJSON(ctx, nil, v1); err != nil || !sameJSON(t, got, goldenWant(t, "value_avro_confluent_evolved")) {
		t.Fatalf("after recovery: got (%s, %v)", got, err)
	}
}

func TestConfluentUnreachableAndTimeout(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer hang.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	src := confluentBytes(1, goldenBin(t, "small"))
	for name, url := range map[string]string{"timeout": hang.URL, "unreachable": closed.URL} {
		t.Run(name, func(t *testing.T) {
			d := confluentValue(t, url, config.Codec{Format: config.FormatAvro}, Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
			_, err := d.AppendJSON(context.Background(), nil, src)
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDecode) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
	t.Run("caller gives up", func(t *testing.T) {
		d := confluentValue(t, hang.URL, config.Codec{Format: config.FormatAvro}, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := d.AppendJSON(ctx, nil, src); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want ErrUnavailable and the context's error", err)
		}
	})
}

// TestConfluentFetchOnce: 50 concurrent decodes of records of one id, on
// the key and the value side, make exactly one registry request.
func TestConfluentFetchOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    config.Codec
		vec  string
		id   string
	}{
		{"avro", config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}, "value_avro_confluent", "1"},
		{"protobuf", config.Codec{Format: config.FormatProtobuf}, "value_protobuf_confluent_registry_only", "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf := newFakeConfluent(t, loadGoldenRegistry(t))
			c := tc.c
			c.Registry = config.RegistryConfluent
			key, value, err := NewKeyValue(context.Background(), config.Config{
				Registry: config.SchemaRegistry{URL: cf.URL()}, Key: c, Value: c,
			}, Options{})
			must(t, err)
			src, want := goldenVec(t, tc.vec), goldenWant(t, tc.vec)
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for i := range 50 {
				dec := key
				if i%2 == 1 {
					dec = value
				}
				wg.Go(func() {
					got, err := dec.AppendJSON(context.Background(), nil, src)
					if err == nil && !sameJSON(t, got, want) {
						err = errors.New("wrong JSON " + string(got))
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			cf.mu.Lock()
			defer cf.mu.Unlock()
			if got := cf.idCounts[tc.id]; got != 1 {
				t.Errorf("got %d requests for id %s, want 1", got, tc.id)
			}
		})
	}
}

func TestConfluentProtobufReferences(t *testing.T) {
	cf := newFakeConfluent(t, goldenRegistry{})
	cf.SeedSchema("common", 1, 10, srSchema(`syntax = "proto3"; package common; message Money { string currency = 1; int64 units = 2; }`, "PROTOBUF"))
	main := srSchema(`syntax = "proto3"; package shop; import "common/money.proto";
message Order { string id = 1; common.Money total = 2; }`, "PROTOBUF")
	main.References = append(main.References, srRef("common/money.proto", "common", 1))
	cf.SeedSchema("orders-value", 1, 11, main)
	d := confluentValue(t, cf.URL(), config.Codec{Format: config.FormatProtobuf}, Options{})
	// Order{id: "o1", total: {currency: "EUR", units: 5}}, index [0].
	payload := []byte{0x0a, 2, 'o', '1', 0x12, 7, 0x0a, 3, 'E', 'U', 'R', 0x10, 5}
	got, err := d.AppendJSON(context.Background(), nil, append(confluentBytes(11, nil), append([]byte{0}, payload...)...))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"o1","total":{"currency":"EUR","units":"5"}}`; !sameJSON(t, got, []byte(want)) {
		t.Errorf("got %s, want %s", got, want)
	}
}

func glueValue(t *testing.T, g *fakeGlue, c config.Codec, o Options) Decoder {
	t.Helper()
	c.Registry = config.RegistryGlue
	o.Glue = g.client(t)
	_, d, err := NewKeyValue(context.Background(), config.Config{Key: config.Codec{Format: config.FormatString}, Value: c}, o)
	must(t, err)
	return d
}

func TestGlue(t *testing.T) {
	gr := loadGoldenRegistry(t)
	g := newFakeGlue(t, gr)
	d := glueValue(t, g, config.Codec{Format: config.FormatAvro, SchemaFile: productSchemaFile}, Options{MaxDecompressed: 1 << 20})
	ctx := context.Background()
	small := goldenBin(t, "small")

	t.Run("unknown version", func(t *testing.T) {
		_, err := d.AppendJSON(ctx, nil, glueFrame(t, glueVersions["unknown-schema"], small, false))
		var me *MissingSchemaError
		if !errors.Is(err, ErrDecode) || !errors.As(err, &me) || !strings.Contains(err.Error(), glueVersions["unknown-schema"]) {
			t.Fatalf("got %v, want a *MissingSchemaError naming the version", err)
		}
	})
	t.Run("outage then recovery", func(t *testing.T) {
		src := goldenVec(t, "value_avro_glue_evolved")
		g.down.Store(http.StatusInternalServerError)
		_, err := d.AppendJSON(ctx, nil, src)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDecode) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
		g.down.Store(0)
		if got, err := d.AppendJSON(ctx, nil, src); err != nil || !sameJSON(t, got, goldenWant(t, "value_avro_glue_evolved")) {
			t.Fatalf("after recovery: got (%s, %v)", got, err)
		}
	})
	t.Run("fetch once", func(t *testing.T) {
		d := glueValue(t, g, config.Codec{Format: config.FormatProtobuf}, Options{})
		src := goldenVec(t, "value_protobuf_glue_registry_only")
		before := g.calls.Load()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := d.AppendJSON(ctx, nil, src); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := g.calls.Load() - before; got != 1 {
			t.Errorf("got %d GetSchemaVersion calls, want 1", got)
		}
	})
	t.Run("zip bomb", func(t *testing.T) {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(make([]byte, 2<<20))
		w.Close()
		id := parseUUID(t, glueVersions["avro-value"])
		src := append(append([]byte{3, 5}, id[:]...), z.Bytes()...)
		_, err := d.AppendJSON(ctx, nil, src)
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "more than 1048576 bytes") {
			t.Fatalf("got %v, want a decode error for the size", err)
		}
	})
	for name, src := range map[string][]byte{
		"header byte":      append([]byte{2, 0}, make([]byte, 16)...),
		"compression byte": append([]byte{3, 9}, make([]byte, 16)...),
		"short":            {3, 0, 1},
		"bad zlib":         append(append([]byte{3, 5}, make([]byte, 16)...), 1, 2, 3),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := d.AppendJSON(ctx, nil, src); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "malformed glue framing") {
				t.Fatalf("got %v, want a framing error", err)
			}
		})
	}
}

// TestRegistryErrorsHideURLSecrets: a registry URL may carry a credential
// (user info, or a token in its query); no error, and so no log line or
// dead-letter header, names it.
func TestRegistryErrorsHideURLSecrets(t *testing.T) {
	cf := newFakeConfluent(t, loadGoldenRegistry(t))
	cf.down.Store(http.StatusServiceUnavailable)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	src := confluentBytes(1, goldenBin(t, "small"))
	for name, base := range map[string]string{"outage": cf.URL(), "unreachable": closed.URL} {
		t.Run(name, func(t *testing.T) {
			u := strings.Replace(base, "://", "://svc:pa55word@", 1) + "/?apikey=s3cret"
			d := confluentValue(t, u, config.Codec{Format: config.FormatAvro}, Options{})
			_, err := d.AppendJSON(context.Background(), nil, src)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "pa55word") {
				t.Fatalf("the error names a secret: %s", msg)
			}
		})
	}
}
