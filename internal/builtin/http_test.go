package builtin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/config"
	"github.com/msk-consumer/msk-consumer/handler"
)

const testAuth = "Bearer s3cr3t-t0ken-value"

// testRecords is a batch of partition 3 of "products" with the awkward
// cases: a tombstone, a record without key, binary and non-UTF-8 header
// values, a repeated header key and a broker-set timestamp.
func testRecords() handler.Batch {
	ts := time.Date(2026, 11, 22, 11, 30, 0, 123_000_000, time.UTC)
	rec := func(off int64, key, value string, hs ...kgo.RecordHeader) handler.Record {
		r := handler.Record{Raw: &kgo.Record{Topic: "products", Partition: 3, Offset: off, Timestamp: ts.Add(time.Duration(off-10) * time.Second), Headers: hs}}
		if key != "" {
			r.Key = json.RawMessage(key)
		}
		if value != "" {
			r.Value = json.RawMessage(value)
		}
		return r
	}
	hdr := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	b := handler.Batch{Topic: "products", Partition: 3, Records: []handler.Record{
		rec(10, `"SKU-000010"`, `{"id":10,"sku":"SKU-000010","tags":["a"],"note":"line\nbreak \"quoted\" é"}`, hdr("trace-id", "t-10")),
		rec(11, `"SKU-000011"`, ``), // tombstone
		rec(12, ``, `{"id":12}`),    // no key
		rec(13, `"SKU-000013"`, `{"id":13}`,
			kgo.RecordHeader{Key: "binary", Value: []byte{0x00, 0x01, 0xfe, 0xff}},
			kgo.RecordHeader{Key: "latin1", Value: []byte("caf\xe9")},
			hdr("dup", "first"), hdr("other", "x"), hdr("dup", "last"),
			kgo.RecordHeader{Key: "empty"},
		),
		rec(15, `"SKU-000015"`, `[1,2.5,null,true]`),
	}}
	b.Records[4].Raw.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{TimestampType: 1})
	b.Records[4].Raw.Timestamp = time.Date(2026, 11, 22, 11, 30, 0, 0, time.FixedZone("CET", 3600))
	return b
}

type wireRecord struct {
	Topic         string            `json:"topic"`
	Partition     int32             `json:"partition"`
	Offset        int64             `json:"offset"`
	Timestamp     string            `json:"timestamp"`
	TimestampType string            `json:"timestampType"`
	Key           json.RawMessage   `json:"key"`
	Value         json.RawMessage   `json:"value"`
	Headers       map[string]string `json:"headers"`
}

type wireBatch struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Records   []wireRecord `json:"records"`
}

// wantWire is what testRecords must look like on the wire, written out by
// hand rather than derived from the code under test.
func wantWire() wireBatch {
	r := func(off int64, ts, tt, key, value string, hs map[string]string) wireRecord {
		return wireRecord{"products", 3, off, ts, tt, json.RawMessage(key), json.RawMessage(value), hs}
	}
	return wireBatch{Topic: "products", Partition: 3, Records: []wireRecord{
		r(10, "2026-11-22T11:30:00.123Z", "CREATE_TIME", `"SKU-000010"`,
			`{"id":10,"sku":"SKU-000010","tags":["a"],"note":"line\nbreak \"quoted\" é"}`, map[string]string{"trace-id": "t-10"}),
		r(11, "2026-11-22T11:30:01.123Z", "CREATE_TIME", `"SKU-000011"`, `null`, map[string]string{}),
		r(12, "2026-11-22T11:30:02.123Z", "CREATE_TIME", `null`, `{"id":12}`, map[string]string{}),
		r(13, "2026-11-22T11:30:03.123Z", "CREATE_TIME", `"SKU-000013"`, `{"id":13}`, map[string]string{
			"binary": "AAH+/w==", "latin1": "Y2Fm6Q==", "dup": "last", "other": "x", "empty": "",
		}),
		r(15, "2026-11-22T10:30:00.000Z", "LOG_APPEND_TIME", `"SKU-000015"`, `[1,2.5,null,true]`, map[string]string{}),
	}}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("got invalid JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("want invalid JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

type captured struct {
	method, path string
	header       http.Header
	body         []byte
}

// server answers every request with reply after recording it.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newServer(t *testing.T, reply http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, captured{r.Method, r.URL.Path, r.Header.Clone(), body})
		s.mu.Unlock()
		reply(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func newTestHTTP(t *testing.T, url string, timeout time.Duration) (*HTTP, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	h, err := NewHTTP(config.Handler{Name: "http", HTTPURL: url, HTTPTimeout: timeout, HTTPAuth: testAuth}, zap.New(core), nil)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	return h, logs
}

func TestHTTPRequest(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	h, _ := newTestHTTP(t, s.URL+"/hooks/products?code=abc", time.Second)

	if err := h.Handle(t.Context(), testRecords()); err != nil {
		t.Fatalf("Handle: got %v, want nil", err)
	}
	reqs := s.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.method != http.MethodPost {
		t.Errorf("method: got %s, want POST", req.method)
	}
	if req.path != "/hooks/products" {
		t.Errorf("path: got %s, want /hooks/products", req.path)
	}
	for name, want := range map[string]string{
		"Content-Type":   "application/json",
		"Authorization":  testAuth,
		"Content-Length": fmt.Sprint(len(req.body)),
	} {
		if got := req.header.Get(name); got != want {
			t.Errorf("header %s: got %q, want %q", name, got, want)
		}
	}
	if !json.Valid(req.body) {
		t.Fatalf("body is not valid JSON: %s", req.body)
	}
	if n := bytes.Count(req.body, []byte(`"dup":`)); n != 1 {
		t.Errorf("repeated header key: got %d occurrences, want 1", n)
	}

	var got wireBatch
	if err := json.Unmarshal(req.body, &got); err != nil {
		t.Fatalf("unmarshal body: %v", err)
	}
	want := wantWire()
	if got.Topic != want.Topic || got.Partition != want.Partition {
		t.Errorf("batch: got %s/%d, want %s/%d", got.Topic, got.Partition, want.Topic, want.Partition)
	}
	if len(got.Records) != len(want.Records) {
		t.Fatalf("records: got %d, want %d", len(got.Records), len(want.Records))
	}
	for i, g := range got.Records {
		w := want.Records[i]
		t.Run(fmt.Sprint("offset ", w.Offset), func(t *testing.T) {
			if g.Topic != w.Topic || g.Partition != w.Partition || g.Offset != w.Offset {
				t.Errorf("position: got %s/%d@%d, want %s/%d@%d", g.Topic, g.Partition, g.Offset, w.Topic, w.Partition, w.Offset)
			}
			if g.Timestamp != w.Timestamp {
				t.Errorf("timestamp: got %s, want %s", g.Timestamp, w.Timestamp)
			}
			if g.TimestampType != w.TimestampType {
				t.Errorf("timestampType: got %s, want %s", g.TimestampType, w.TimestampType)
			}
			if !jsonEqual(t, g.Key, w.Key) {
				t.Errorf("key: got %s, want %s", g.Key, w.Key)
			}
			if !jsonEqual(t, g.Value, w.Value) {
				t.Errorf("value: got %s, want %s", g.Value, w.Value)
			}
			if !reflect.DeepEqual(g.Headers, w.Headers) {
				t.Errorf("headers: got %v, want %v", g.Headers, w.Headers)
			}
		})
	}
}

// TestHTTPBodyExact pins the byte layout of one record, so that a change to
// the wire format is a deliberate one.
func TestHTTPBodyExact(t *testing.T) {
	b := testRecords()
	b.Records = b.Records[3:4]
	got := string(appendBody(nil, &b))
	want := `{"topic":"products","partition":3,"records":[{"topic":"products","partition":3,"offset":13,` +
		`"timestamp":"2026-11-22T11:30:03.123Z","timestampType":"CREATE_TIME","key":"SKU-000013","value":{"id":13},` +
		`"headers":{"binary":"AAH+/w==","latin1":"Y2Fm6Q==","other":"x","dup":"last","empty":""}}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHTTPEmptyBatch(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	h, _ := newTestHTTP(t, s.URL, time.Second)
	if err := h.Handle(t.Context(), handler.Batch{Topic: "products"}); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("got %d requests, want 0", n)
	}
}

// TestHTTPConcurrent posts from many goroutines, half of them to a service
// that answers before reading the body, to check under -race that a pooled
// buffer is never reused while the transport still reads it.
func TestHTTPConcurrent(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	})
	var mu sync.Mutex
	bad := 0
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		var got wireBatch
		err := json.NewDecoder(r.Body).Decode(&got)
		if err != nil || len(got.Records) == 0 || got.Records[0].Partition != got.Partition {
			mu.Lock()
			bad++
			mu.Unlock()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	early, _ := newTestHTTP(t, srv.URL+"/early", 5*time.Second)
	read, _ := newTestHTTP(t, srv.URL+"/read", 5*time.Second)

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 10 {
				b := testRecords()
				b.Partition = int32(g)
				for i := range b.Records {
					b.Records[i].Raw.Partition = int32(g)
					b.Records[i].Value = json.RawMessage(`{"pad":"` + strings.Repeat("p", 8<<10) + `"}`)
				}
				if err := read.Handle(t.Context(), b); err != nil {
					t.Errorf("read: %v", err)
				}
				if err := early.Handle(t.Context(), b); !errors.Is(err, handler.ErrPermanent) {
					t.Errorf("early: got %v, want a permanent error", err)
				}
			}
		})
	}
	wg.Wait()
	if bad != 0 {
		t.Errorf("got %d corrupt bodies, want 0", bad)
	}
}

func TestNewHTTP(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Handler
		wantErr string
	}{
		{name: "https", cfg: config.Handler{HTTPURL: "https://example.com/hook"}},
		{name: "empty", cfg: config.Handler{}, wantErr: "want an http:// or https:// URL"},
		{name: "no scheme", cfg: config.Handler{HTTPURL: "example.com/hook"}, wantErr: "want an http:// or https:// URL"},
		{name: "ftp with credentials", cfg: config.Handler{HTTPURL: "ftp://u:pa55word@example.com/?k=query-secret"}, wantErr: "ftp://u:xxxxx@example.com/?k=REDACTED"},
		{name: "unparsable", cfg: config.Handler{HTTPURL: "http://u:pa55word@[::1"}, wantErr: "not a valid URL"},
		{name: "newline in auth", cfg: config.Handler{HTTPURL: "http://h/", HTTPAuth: "Bearer s3cr3t\r\nX: y"}, wantErr: "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHTTP(tt.cfg, nil, nil)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("got %v, want a handler", err)
				}
				if h.timeout != config.DefaultHTTPHandlerTimeout {
					t.Errorf("timeout: got %s, want %s", h.timeout, config.DefaultHTTPHandlerTimeout)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			for _, secret := range []string{"pa55word", "query-secret", "s3cr3t"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains %q", err, secret)
				}
			}
		})
	}
}

func TestSnippet(t *testing.T) {
	h := &HTTP{auth: testAuth}
	tests := []struct {
		name, body, want string
	}{
		{name: "empty", body: "", want: ""},
		{name: "one line", body: "  a\r\n\tb  c\x00d ", want: "a b c d"},
		{name: "long", body: strings.Repeat("é", 150), want: strings.Repeat("é", 100) + "…"},
		{name: "invalid UTF-8", body: "a\xffb", want: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.snippet([]byte(tt.body)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// benchBatch is a batch of n records shaped like the demo's product events.
func benchBatch(n int) handler.Batch {
	b := handler.Batch{Topic: "products", Partition: 3, Records: make([]handler.Record, n)}
	ts := time.Date(2026, 11, 22, 11, 30, 0, 123_000_000, time.UTC)
	for i := range b.Records {
		off := int64(1_000_000 + i)
		b.Records[i] = handler.Record{
			Raw: &kgo.Record{
				Topic: "products", Partition: 3, Offset: off, Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
				Headers: []kgo.RecordHeader{
					{Key: "trace-id", Value: fmt.Appendf(nil, "4bf92f3577b34da6a3ce929d0e0e%04d", i)},
					{Key: "content-type", Value: []byte("application/avro")},
				},
			},
			Key: fmt.Appendf(nil, `"SKU-%06d"`, i),
			Value: fmt.Appendf(nil, `{"id":%d,"sku":"SKU-%06d","name":"Stainless steel water bottle, 750 ml","price":19.99,`+
				`"currency":"EUR","tags":["outdoor","kitchen"],"updatedAt":"2026-11-22T11:30:00.123Z"}`, i, i),
		}
	}
	return b
}

func BenchmarkHTTPBody(b *testing.B) {
	batch := benchBatch(500)
	buf := appendBody(nil, &batch)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendBody(buf[:0], &batch)
	}
}
