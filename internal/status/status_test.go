package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

type fakeSource struct{ c Consumer }

func (f fakeSource) Snapshot(time.Time) Consumer { return f.c }

func ptr[T any](v T) *T { return &v }

// stuckView is a member with a lane stuck on its handler, one flowing
// partition and two dead letters.
func stuckStatus() *Status {
	src := fakeSource{Consumer{
		Group: Group{Type: "consumer", ID: "orders-svc", Member: "m-1", Generation: 7, Protocol: "classic"},
		Partitions: []Partition{
			{Topic: "orders", Partition: 1, Committed: 40, End: 50, Next: 45, LagRecords: 5, LagSeconds: ptr(0.0), Lanes: []Lane{{Name: "orders/1"}}},
			{Topic: "orders", Partition: 0, Committed: 100, End: 180, Next: 100, LagRecords: 80, LagSeconds: ptr(95.0), Paused: true,
				Lanes: []Lane{{Name: "orders/0", Queued: 30, Batch: &Batch{FirstOffset: 100, LastOffset: 109, Records: 10, Since: t0.Add(-90 * time.Second), AgeSeconds: 90, Attempt: 1, CallSeconds: 90}}}},
		},
	}}
	var l Letters
	l.Add(DeadLetter{Topic: "orders", Partition: 1, Offset: 41, Kind: "decode", Message: "value: invalid JSON", Time: t0.Add(-time.Minute)},
		DeadLetter{Topic: "orders", Partition: 1, Offset: 43, Kind: "handler", Message: "handler answered 422 <b>", Time: t0.Add(-30 * time.Second)})
	smp := NewSampler(5*time.Second, time.Minute, nil, src)
	smp.Sample(t0.Add(-10 * time.Second))
	smp.Sample(t0.Add(-5 * time.Second))
	smp.Sample(t0)
	return New(Config{Version: "v1.2.3", Commit: "abc1234", Started: t0.Add(-time.Hour), Group: "orders-svc", Protocol: "classic", UnreadyAfter: time.Minute},
		Deps{
			Source: src,
			Stalls: func(time.Time) []Stall {
				return []Stall{{Key: "orders/0", Reason: "handler http has not returned from a call of 10 records (offsets 100 to 109) made 1m30s ago", Since: t0.Add(-90 * time.Second)},
					{Key: "orders/1", Reason: "decoding value: registry unreachable", Since: t0.Add(-10 * time.Second)}}
			},
			Ready:   func() bool { return false },
			Letters: &l,
			History: smp,
			Now:     func() time.Time { return t0 },
		})
}

func TestViewJSONFieldByField(t *testing.T) {
	srv := httptest.NewServer(stuckStatus().Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": "v1.2.3", "commit": "abc1234", "started": "2026-12-07T02:00:00Z", "now": "2026-12-07T03:00:00Z",
		"uptime_seconds": 3600.0, "ready": false,
		"group": map[string]any{"type": "consumer", "id": "orders-svc", "member": "m-1", "generation": 7.0, "protocol": "classic"},
	}
	for k, w := range want {
		if got := fmt.Sprint(v[k]); got != fmt.Sprint(w) {
			t.Errorf("%s: got %s, want %s", k, got, fmt.Sprint(w))
		}
	}
	parts := v["partitions"].([]any)
	if len(parts) != 2 {
		t.Fatalf("got %d partitions, want 2", len(parts))
	}
	p0 := parts[0].(map[string]any) // sorted: orders/0 first
	for k, w := range map[string]any{"topic": "orders", "partition": 0.0, "committed": 100.0, "end": 180.0, "next": 100.0, "lag_records": 80.0, "lag_seconds": 95.0, "paused": true} {
		if got := p0[k]; got != w {
			t.Errorf("partitions[0].%s: got %v, want %v", k, got, w)
		}
	}
	lane := p0["lanes"].([]any)[0].(map[string]any)
	if lane["name"] != "orders/0" || lane["queued"] != 30.0 || !strings.Contains(lane["stall"].(string), "has not returned") {
		t.Errorf("lane: got %v", lane)
	}
	b := lane["batch"].(map[string]any)
	for k, w := range map[string]any{"first_offset": 100.0, "last_offset": 109.0, "records": 10.0, "age_seconds": 90.0, "attempt": 1.0, "call_seconds": 90.0, "since": "2026-12-07T02:58:30Z"} {
		if got := b[k]; got != w {
			t.Errorf("batch.%s: got %v, want %v", k, got, w)
		}
	}
	if l1 := parts[1].(map[string]any)["lanes"].([]any)[0].(map[string]any); l1["batch"] != nil || !strings.Contains(l1["stall"].(string), "registry unreachable") {
		t.Errorf("orders/1 lane: got %v, want idle with its decode stall", l1)
	}
	stalls := v["stalls"].([]any)
	if len(stalls) != 2 {
		t.Fatalf("got %d stalls, want 2", len(stalls))
	}
	s0, s1 := stalls[0].(map[string]any), stalls[1].(map[string]any)
	if s0["key"] != "orders/0" || s0["seconds"] != 90.0 || s0["unready"] != true || s1["unready"] != false || s1["seconds"] != 10.0 {
		t.Errorf("stalls: got %v", stalls)
	}
	dls := v["dead_letters"].([]any)
	if len(dls) != 2 {
		t.Fatalf("got %d dead letters, want 2", len(dls))
	}
	d0 := dls[0].(map[string]any) // newest first
	wantDL := map[string]any{"topic": "orders", "partition": 1.0, "offset": 43.0, "kind": "handler", "message": "handler answered 422 <b>", "time": "2026-12-07T02:59:30Z"}
	if len(d0) != len(wantDL) {
		t.Errorf("dead letter has fields %v, want exactly %v", d0, wantDL)
	}
	for k, w := range wantDL {
		if d0[k] != w {
			t.Errorf("dead_letters[0].%s: got %v, want %v", k, d0[k], w)
		}
	}
	h := v["history"].(map[string]any)
	if h["every_seconds"] != 5.0 || h["window_seconds"] != 60.0 || len(h["samples"].([]any)) != 2 {
		t.Errorf("history: got %v", h)
	}
	smp := h["samples"].([]any)[1].(map[string]any)
	if smp["lag_records"] != 85.0 || smp["lag_seconds"] != 95.0 {
		t.Errorf("last sample: got %v, want lag 85 records and 95 s", smp)
	}
}

func TestPageBehindPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/status", stuckStatus().Handler())
	mux.Handle("/status.json", stuckStatus().Handler())
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	front := http.NewServeMux()
	front.Handle("/ops/consumer/", http.StripPrefix("/ops/consumer", mux))
	srv := httptest.NewServer(front)
	defer srv.Close()

	base := srv.URL + "/ops/consumer/status"
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %s, want 200", resp.Status)
	}
	html := string(body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`data-lane="orders/0"`, "has not returned from a call of 10 records",
		"not ready", "v1.2.3", "m-1", "paused", "1m35s", // lag seconds of orders/0
		"handler answered 422 &lt;b&gt;", "value: invalid JSON",
		"<svg", "<polyline",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(html), "<script") {
		t.Error("page has a script: it must read without JavaScript")
	}
	// Every link and source is relative, and resolves under the prefix.
	u, _ := url.Parse(base)
	refs := regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) == 0 {
		t.Fatal("no link found")
	}
	for _, m := range refs {
		ref, err := url.Parse(m[1])
		if err != nil || ref.IsAbs() || strings.HasPrefix(m[1], "/") {
			t.Errorf("link %q is not relative", m[1])
			continue
		}
		got := u.ResolveReference(ref)
		r, err := http.Get(got.String())
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if m[1] != "metrics" && r.StatusCode != 200 { // metrics is not served by this test's mux
			t.Errorf("link %q -> %s: %s", m[1], got.Path, r.Status)
		}
		if !strings.HasPrefix(got.Path, "/ops/consumer/") {
			t.Errorf("link %q leaves the prefix: %s", m[1], got.Path)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q: want nothing loaded from elsewhere", csp)
	}
}

func TestEmptyViewBeforeJoin(t *testing.T) {
	s := New(Config{Group: "g", Protocol: "consumer", Started: t0}, Deps{Now: func() time.Time { return t0 }})
	v := s.View()
	if v.Group.ID != "g" || v.Group.Type != "consumer" || v.Group.Member != "" || v.Group.Generation != -1 || v.Partitions == nil || v.Stalls == nil || v.DeadLetters == nil || v.History.Samples == nil {
		t.Errorf("got %+v, want the group from the configuration and empty (not null) lists", v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/status", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "no partition assigned") || !strings.Contains(rec.Body.String(), "not joined") {
		t.Errorf("got %d %s", rec.Code, rec.Body.String())
	}
}

func TestLettersKeepsTheLast50NewestFirst(t *testing.T) {
	var l Letters
	for i := range 120 {
		l.Add(DeadLetter{Offset: int64(i), Message: strings.Repeat("x", 600)})
	}
	got := l.List()
	if len(got) != MaxLetters {
		t.Fatalf("got %d, want %d", len(got), MaxLetters)
	}
	for i, d := range got {
		if want := int64(119 - i); d.Offset != want {
			t.Fatalf("got offset %d at %d, want %d", d.Offset, i, want)
		}
	}
	if n := len(got[0].Message); n > maxMessage+len("…") {
		t.Errorf("message of %d bytes kept, want at most %d", n, maxMessage)
	}
}

func TestSamplerRatesAndWindow(t *testing.T) {
	var tot Totals
	s := NewSampler(5*time.Second, 20*time.Second, func() Totals { return tot }, nil) // 4 samples kept
	s.Sample(t0)
	for i := 1; i <= 6; i++ {
		tot.Records += 500      // 100/s
		tot.Batches += 10       // 10 batches
		tot.BatchSeconds += 0.2 // of 20 ms
		s.Sample(t0.Add(time.Duration(i) * 5 * time.Second))
	}
	h := s.History()
	if len(h.Samples) != 4 {
		t.Fatalf("got %d samples, want 4", len(h.Samples))
	}
	if first := h.Samples[0].Time; !first.Equal(t0.Add(15 * time.Second)) {
		t.Errorf("oldest sample at %v, want the 3rd", first)
	}
	for _, smp := range h.Samples {
		if smp.RecordsPerSecond != 100 || fmt.Sprintf("%.3f", smp.LatencySeconds) != "0.020" {
			t.Errorf("got %+v, want 100 records/s and 20ms", smp)
		}
	}
	c := Charts(h, t0.Add(30*time.Second))
	if len(c) != 4 || strings.Count(c[1].Points, ",") != 4 || c[1].Last != "100" {
		t.Errorf("charts: got %+v", c)
	}
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	WriteText(&b, stuckStatus().View())
	out := b.String()
	for _, want := range []string{
		"consumer v1.2.3 (commit abc1234), up 1h0m0s, NOT READY",
		"group orders-svc, member m-1, generation 7, protocol classic",
		"orders/0 for 1m30s (past UNREADY_AFTER): handler http has not returned",
		"orders/1 for 10.0s: decoding value: registry unreachable",
		"10 records, offsets 100-109", "1 (call 1m30s)", "paused", "1m35s",
		"last 2 dead letters:", "handler answered 422 <b>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}
