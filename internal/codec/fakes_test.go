package codec

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// fakeConfluent is pkg/sr's in-memory registry (an httptest server) with a
// switch for an outage and a count of schema-by-id requests.
type fakeConfluent struct {
	*srfake.Registry
	down     atomic.Int32 // HTTP status to answer every request with, 0 for none
	idCalls  atomic.Int64
	mu       sync.Mutex
	idCounts map[string]int
}

func newFakeConfluent(t *testing.T, g goldenRegistry) *fakeConfluent {
	t.Helper()
	f := &fakeConfluent{Registry: srfake.New(), idCounts: map[string]int{}}
	t.Cleanup(f.Close)
	f.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if code := f.down.Load(); code != 0 {
			w.WriteHeader(int(code))
			w.Write([]byte(`{"error_code":50001,"message":"down for the test"}`))
			return true
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/schemas/ids/"); ok {
			f.idCalls.Add(1)
			f.mu.Lock()
			f.idCounts[id]++
			f.mu.Unlock()
		}
		return false
	})
	for _, c := range g.Confluent {
		var typ sr.SchemaType
		must(t, typ.UnmarshalText([]byte(c.Type)))
		f.SeedSchema(c.Subject, c.Version, c.ID, sr.Schema{Schema: c.Schema, Type: typ})
	}
	return f
}

// fakeGlue answers glue:GetSchemaVersion (AWS JSON 1.1) from a map.
type fakeGlue struct {
	srv   *httptest.Server
	calls atomic.Int64
	down  atomic.Int32
	mu    sync.Mutex
	byID  map[string]goldenGlue
}

func newFakeGlue(t *testing.T, g goldenRegistry) *fakeGlue {
	t.Helper()
	f := &fakeGlue{byID: map[string]goldenGlue{}}
	for _, v := range g.Glue {
		f.byID[v.Version] = v
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGlue) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if code := f.down.Load(); code != 0 {
		w.WriteHeader(int(code))
		w.Write([]byte(`{"__type":"InternalServiceException","message":"down for the test"}`))
		return
	}
	if got := r.Header.Get("X-Amz-Target"); got != "AWSGlue.GetSchemaVersion" {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"InvalidInputException","message":"unexpected target ` + got + `"}`))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"__type":"AccessDeniedException","message":"not signed"}`))
		return
	}
	var in struct{ SchemaVersionId string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	v, ok := f.byID[in.SchemaVersionId]
	f.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"__type":"EntityNotFoundException","message":"Schema version is not found."}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"SchemaVersionId": v.Version, "DataFormat": v.DataFormat, "SchemaDefinition": v.Definition,
		"Status": "AVAILABLE", "VersionNumber": 1,
	})
}

// client is a real Glue client pointed at the fake with an endpoint
// override and static credentials, without retries so that an outage shows
// at once.
func (f *fakeGlue) client(t *testing.T) *glue.Client {
	t.Helper()
	return glue.New(glue.Options{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		BaseEndpoint: aws.String(f.srv.URL),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   f.srv.Client(),
	})
}

var _ = context.Background

func srSchema(text, typ string) sr.Schema {
	var t sr.SchemaType
	if err := t.UnmarshalText([]byte(typ)); err != nil {
		panic(err)
	}
	return sr.Schema{Schema: text, Type: t}
}

func srRef(name, subject string, version int) sr.SchemaReference {
	return sr.SchemaReference{Name: name, Subject: subject, Version: version}
}
