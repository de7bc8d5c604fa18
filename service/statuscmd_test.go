package service

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/msk-consumer/msk-consumer/internal/status"
)

// statusServer serves v as /status.json under prefix, as the service
// behind a path-stripping proxy would.
func statusServer(t *testing.T, prefix string, v status.View) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/status.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
	var h http.Handler = mux
	if prefix != "" {
		front := http.NewServeMux()
		front.Handle(prefix+"/", http.StripPrefix(prefix, mux))
		h = front
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func stuckView(ready bool) status.View {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	lag := 95.0
	return status.View{
		Version: "v1.2.3", Commit: "abc1234", Started: now.Add(-time.Hour), Now: now, UptimeSeconds: 3600, Ready: ready,
		Group: status.Group{ID: "orders-svc", Member: "m-1", Generation: 7, Protocol: "classic"},
		Partitions: []status.Partition{{Topic: "orders", Partition: 0, Committed: 100, End: 180, Next: 100, LagRecords: 80, LagSeconds: &lag,
			Lanes: []status.Lane{{Name: "orders/0", Batch: &status.Batch{FirstOffset: 100, LastOffset: 109, Records: 10, AgeSeconds: 90, Attempt: 2, CallSeconds: 30},
				Stall: "handler http has not returned from a call of 10 records"}}}},
		Stalls:      []status.Stall{{Key: "orders/0", Reason: "handler http has not returned from a call of 10 records", Seconds: 90, Unready: !ready}},
		DeadLetters: []status.DeadLetter{{Topic: "orders", Partition: 0, Offset: 99, Kind: "handler", Message: "answered 422", Time: now}},
	}
}

func TestStatusCommand(t *testing.T) {
	srv := statusServer(t, "", stuckView(false))
	prefixed := statusServer(t, "/ops/consumer", stuckView(true))
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		out, err string
	}{
		{name: "default url from METRICS_ADDR, not ready", args: []string{"status"}, env: map[string]string{"METRICS_ADDR": host}, code: exitRuntime,
			out: "NOT READY"},
		{name: "METRICS_ADDR on every interface", args: []string{"status"}, env: map[string]string{"METRICS_ADDR": "0.0.0.0:" + host[strings.LastIndex(host, ":")+1:]}, code: exitRuntime,
			out: "orders/0 for 1m30s (past UNREADY_AFTER): handler http has not returned"},
		{name: "url behind a prefix, ready", args: []string{"status", "--url", prefixed.URL + "/ops/consumer"}, code: exitOK,
			out: "10 records, offsets 100-109"},
		{name: "url of the page itself", args: []string{"status", "--url", prefixed.URL + "/ops/consumer/status"}, code: exitOK, out: "answered 422"},
		{name: "url of status.json", args: []string{"status", "--url", prefixed.URL + "/ops/consumer/status.json"}, code: exitOK, out: "2 (call 30.0s)"},
		{name: "json", args: []string{"status", "--url", prefixed.URL + "/ops/consumer/", "--output", "json"}, code: exitOK, out: `"first_offset": 100`},
		{name: "not a status page", args: []string{"status", "--url", prefixed.URL + "/elsewhere"}, code: exitRuntime, err: "404"},
		{name: "nothing listening", args: []string{"status", "--url", "http://127.0.0.1:1"}, code: exitRuntime, err: "cannot read the status page"},
		{name: "bad url", args: []string{"status", "--url", "ftp://x"}, code: exitConfig, err: "expected an http:// or https:// URL"},
		{name: "bad METRICS_ADDR", args: []string{"status"}, env: map[string]string{"METRICS_ADDR": "nope"}, code: exitConfig, err: "METRICS_ADDR"},
		{name: "bad output", args: []string{"status", "--output", "yaml"}, code: exitConfig, err: "expected text or json"},
		{name: "argument", args: []string{"status", "extra"}, code: exitConfig, err: "unexpected argument"},
		{name: "help", args: []string{"status", "-h"}, code: exitOK, err: "usage: consumer status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			code := run(tt.args, lookup, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.out) {
				t.Errorf("stdout lacks %q:\n%s", tt.out, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.err) {
				t.Errorf("stderr lacks %q:\n%s", tt.err, stderr.String())
			}
		})
	}
}
