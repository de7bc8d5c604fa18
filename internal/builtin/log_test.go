package builtin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/msk-consumer/msk-consumer/handler"
)

func TestLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	b := testRecords()
	if err := NewLog(zap.New(core)).Handle(t.Context(), b); err != nil {
		t.Fatalf("Handle: got %v, want nil", err)
	}
	entries := logs.All()
	if len(entries) != len(b.Records) {
		t.Fatalf("got %d log lines, want %d", len(entries), len(b.Records))
	}
	wantHeaders := []map[string]any{
		{"trace-id": "t-10"},
		{},
		{},
		{"binary": "AAH+/w==", "latin1": "Y2Fm6Q==", "dup": "last", "other": "x", "empty": ""},
		{},
	}
	for i, e := range entries {
		r := b.Records[i]
		if e.Message != "record" || e.Level != zapcore.InfoLevel {
			t.Errorf("entry %d: got %s %q, want info \"record\"", i, e.Level, e.Message)
		}
		fields := e.ContextMap()
		for name, want := range map[string]any{
			"topic":     "products",
			"partition": int32(3),
			"offset":    r.Raw.Offset,
			"timestamp": r.Raw.Timestamp,
		} {
			got := fields[name]
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(want.(time.Time)) {
					t.Errorf("offset %d: %s: got %v, want %v", r.Raw.Offset, name, got, want)
				}
				continue
			}
			if got != want {
				t.Errorf("offset %d: %s: got %v (%T), want %v (%T)", r.Raw.Offset, name, got, got, want, want)
			}
		}
		for name, want := range map[string]json.RawMessage{"key": r.Key, "value": r.Value} {
			if len(want) == 0 {
				want = json.RawMessage("null")
			}
			got, ok := fields[name].(json.RawMessage)
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("offset %d: %s: got %v (%T), want json.RawMessage %s", r.Raw.Offset, name, fields[name], fields[name], want)
			}
		}
		got, _ := fields["headers"].(map[string]any)
		if len(got) != len(wantHeaders[i]) {
			t.Errorf("offset %d: headers: got %v, want %v", r.Raw.Offset, got, wantHeaders[i])
		}
		for k, v := range wantHeaders[i] {
			if got[k] != v {
				t.Errorf("offset %d: header %s: got %v, want %v", r.Raw.Offset, k, got[k], v)
			}
		}
	}
}

// TestLogJSON checks that key and value are embedded in the JSON log line,
// not escaped into strings.
func TestLogJSON(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	logger := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.InfoLevel))
	b := testRecords()
	b.Records = b.Records[:2]
	if err := NewLog(logger).Handle(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %s", len(lines), buf.String())
	}
	for i, want := range []string{
		`"key":"SKU-000010","value":{"id":10,"sku":"SKU-000010","tags":["a"],"note":"line\nbreak \"quoted\" é"},"headers":{"trace-id":"t-10"}`,
		`"key":"SKU-000011","value":null,"headers":{}`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: got %s, want it to contain %s", i, lines[i], want)
		}
	}
}

func TestLogLevelAndNil(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	if err := NewLog(zap.New(core)).Handle(t.Context(), testRecords()); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	if n := logs.Len(); n != 0 {
		t.Errorf("got %d lines at warn level, want 0", n)
	}
	if err := NewLog(nil).Handle(t.Context(), testRecords()); err != nil {
		t.Errorf("nil logger: got %v, want nil", err)
	}
}

func TestDiscard(t *testing.T) {
	var h handler.Handler = handler.Discard{}
	if err := h.Handle(t.Context(), testRecords()); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestBuiltin(t *testing.T) {
	tests := []struct {
		name    string
		cfg     string // HTTP_HANDLER_URL
		wantOK  bool
		wantErr bool
	}{
		{name: "log", wantOK: true},
		{name: "discard", wantOK: true},
		{name: "http", cfg: "http://127.0.0.1:8080/", wantOK: true},
		{name: "http", cfg: "", wantOK: true, wantErr: true},
		{name: "example", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := Builtin(tt.name)
			if ok != tt.wantOK {
				t.Fatalf("got ok %t, want %t", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			d := handler.Deps{}
			d.Config.Name = tt.name
			d.Config.HTTPURL = tt.cfg
			h, err := f(d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %t", err, tt.wantErr)
			}
			if (h == nil) != tt.wantErr {
				t.Errorf("got handler %v, want one: %t", h, !tt.wantErr)
			}
		})
	}
}
